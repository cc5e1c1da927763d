"""Real-browser fixtures: Debian's chromium driven by Playwright, ``ims-nb lab`` and ``ims-nb app`` on loopback ports.

Every page records console errors and failed requests to our servers; a test fails on any of them, and the
final page is saved as a screenshot under ``test-artifacts/`` whatever the outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, sync_playwright

CHROMIUM = Path(os.environ.get("IMS_NB_CHROMIUM", "/usr/bin/chromium"))
#: Flags for chromium as root in a sandbox with no network (stack-recipes.md, section 4).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TOKEN = "ims-nb-browser-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server the tests started (``ims-nb lab`` or ``ims-nb app``) and what it announced."""

    process: subprocess.Popen[str]
    url: str
    sim: dict[str, str]
    ledger: Path
    folder: Path
    log: Path

    def sim_state(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.sim['endpoint']}/_sim/state", timeout=10).raise_for_status().json())


def _wait_ready(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _sim_line(log: Path, process: subprocess.Popen[str], timeout: float = 30.0) -> dict[str, str]:
    """The simulator's JSON line, which ``ims-nb lab``/``app`` pass to their child in ``$IMS_NB_SIM``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("ims-nb ") and "SIMULATOR at " in line:
                endpoint = line.split("SIMULATOR at ", 1)[1].split()[0]
                return {"endpoint": endpoint}
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"no simulator line from the server:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture()
def lab(tmp_path: Path) -> Iterator[Server]:
    """``ims-nb lab`` (simulator at 600x + JupyterLab) on free ports over a copy of notebooks/; stopped after."""
    folder = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, folder)
    state = tmp_path / "sim-state.sqlite"
    port, log = free_port(), tmp_path / "lab.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_SDK_", "IMS_NB_"))}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ims_nb", "lab", "--port", "0", "--lab-port", str(port), "--lab-token", TOKEN,
             "--notebooks", str(folder), "--time-scale", "600", "--state", str(state)],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
    try:
        sim = _sim_line(log, process)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(f"{url}/api/status?token={TOKEN}", process, log)
        yield Server(process, url, sim, Path(f"{state}.ledger.sqlite"), folder, log)
    finally:
        _stop(process)


@dataclass
class PageWatch:
    """What went wrong in the page: console errors and failed requests to our loopback servers."""

    problems: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and _ours(message.location.get("url", "")):
            self.problems.append(f"console error: {message.text}")

    def failed(self, request: Request) -> None:
        if _ours(request.url):
            self.problems.append(f"request failed: {request.method} {request.url} ({request.failure})")

    def response(self, response: Any) -> None:
        if _ours(response.url) and response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")


def _ours(url: str) -> bool:
    return url.startswith(("http://127.0.0.1", "ws://127.0.0.1"))


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
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


def sim_json(line: str) -> dict[str, str]:
    return dict(json.loads(line))
