"""Real-browser fixtures: Debian's chromium driven by Playwright, ``ims-nb lab`` and ``ims-nb app`` on loopback ports.

Every page records console errors and failed requests to our servers; a test fails on any of them, and the
final page is saved as a screenshot under ``test-artifacts/`` whatever the outcome.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, sync_playwright

from .servers import TOKEN, Server, clean_env, free_port, sim_line, stop, wait_ready

CHROMIUM = Path(os.environ.get("IMS_NB_CHROMIUM", "/usr/bin/chromium"))
#: Flags for chromium as root in a sandbox with no network (stack-recipes.md, section 4).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
#: The notebooks read the sample dataset and write snapshots beside them, in ``../data`` (as in a clone).
DATA = Path(__file__).resolve().parents[2] / "data"


@contextmanager
def running_lab(folder: Path, *, images: int = 200) -> Iterator[Server]:
    """``ims-nb lab`` (simulator at 600x + JupyterLab) on free ports over a copy of notebooks/ and data/."""
    shutil.copytree(NOTEBOOKS, folder / "notebooks")
    shutil.copytree(DATA, folder / "data", ignore=shutil.ignore_patterns("snapshots", "reports"))
    state = folder / "sim-state.sqlite"
    port, log = free_port(), folder / "lab.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ims_nb", "lab", "--port", "0", "--lab-port", str(port), "--lab-token", TOKEN,
             "--notebooks", str(folder / "notebooks"), "--time-scale", "600", "--state", str(state),
             "--images", str(images)],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=clean_env(),
        )  # fmt: skip
    try:
        sim = sim_line(log, process)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/api/status?token={TOKEN}", process, log)
        yield Server(process, url, sim, Path(f"{state}.ledger.sqlite"), folder / "notebooks", log)
    finally:
        stop(process)


@pytest.fixture()
def lab_10k(tmp_path: Path) -> Iterator[Server]:
    """``ims-nb lab`` with a simulator holding 10,000 images."""
    with running_lab(tmp_path, images=10_000) as server:
        yield server


@dataclass
class PageWatch:
    """What went wrong in the page: console errors and failed requests to our loopback servers."""

    problems: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and _ours(message.location.get("url", "")):
            self.problems.append(f"console error: {message.text}")

    def failed(self, request: Request) -> None:
        if request.failure == "net::ERR_ABORTED":
            return  # cancelled by the page itself (a navigation away): a server's failure shows as a response
        if _ours(request.url):
            self.problems.append(f"request failed: {request.method} {request.url} ({request.failure})")

    def response(self, response: Any) -> None:
        if _ours(response.url) and response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")


def _ours(url: str) -> bool:
    return url.startswith(("http://127.0.0.1", "ws://127.0.0.1"))


# Module scope, not session: the sync API runs an event loop of its own while it is open, and the rest of the
# suite's asyncio.run() calls must not find one running.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@pytest.fixture()
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[tuple[Page, PageWatch]]:
    """A fresh page; a screenshot of it is saved at the end, and the test fails on console errors or failed requests."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch = PageWatch()
    page.on("console", watch.console)
    page.on("requestfailed", watch.failed)
    page.on("response", watch.response)
    try:
        yield page, watch
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        finally:
            context.close()
    assert watch.problems == [], "\n".join(watch.problems)
