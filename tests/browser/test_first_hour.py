"""A new user's first hour, replayed in real browsers on a copy of the repository (issue 13's "done when").

In the lab (``ims-nb lab`` as ``make lab`` runs it, serving its git-ignored ``.lab/`` working copy): Run All on
every notebook, save, then 02's click flow to SUCCESS, checking at each step that no message contradicts the
picker, the plan or the jobs. In the app (``ims-nb app``): a mistyped key template, then the fixed one, then a
launch. Afterwards the copy's tracked files are byte for byte what was committed (so the nbval run of the suite
on the committed notebooks covers them) and nothing the sessions saved holds the simulator's credentials.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from .flow import launch_two, ledger_rows, pick_three, three_images
from .lab_page import cell_output, errors, images_rendered, open_notebook, rerun_cell, run_all, shut_down_kernel
from .servers import TOKEN, Server, clean_env, free_port, sim_line, stop, wait_ready

pytestmark = pytest.mark.filterwarnings("ignore::ims_nb.SimulatorWarning")

ROOT = Path(__file__).resolve().parents[2]
#: Where the pages the README shows are saved (``make screenshots`` copies them to docs/screenshots/).
ARTIFACTS = ROOT / "test-artifacts"
#: The figures each notebook draws on Run All under the lab (02's headless section draws none there).
CHARTS = {"00_simulator.ipynb": 0, "01_inventory.ipynb": 3, "02_export.ipynb": 0, "03_job_durations.ipynb": 4,
          "04_coverage.ipynb": 5}  # fmt: skip
#: The preview's rows of images with an export of their own, live or done (never shown as refused for it).
OWN_EXPORT = ".ims-nb-verdicts tr.ims-nb-verdict-exporting, .ims-nb-verdicts tr.ims-nb-verdict-exported"
SUCCESSES = ("n => Array.from(document.querySelector('.ims-nb-monitor').querySelectorAll('.ims-nb-monitor-status'))"
             ".filter(e => e.innerText.startsWith('SUCCESS 100 %')).length === n")  # fmt: skip


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """The repository's tracked files in a fresh git repository of their own, committed: a clone of this checkout."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    copy = tmp_path / "project"
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "-c", "user.name=first-hour", "-c", "user.email=first-hour@example.invalid", "commit", "-qm", "as cloned")
    return copy


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout


@contextmanager
def serving(command: list[str], folder: Path, ready: str, url: str, page: Page) -> Iterator[Server]:
    """``ims-nb lab`` or ``ims-nb app`` started in ``folder`` (as a user would, from the clone), stopped after
    ``page`` has left it (a page left open on a stopped server logs failed requests)."""
    state, log = folder.parent / f"{command[0]}-state.sqlite", folder.parent / f"{command[0]}.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "ims_nb", *command, "--port", "0", "--time-scale", "600",
                                    "--state", str(state)], cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                   text=True, env=clean_env())  # fmt: skip
    try:
        sim = sim_line(log, process)
        wait_ready(ready, process, log)
        yield Server(process, url, sim, Path(f"{state}.ledger.sqlite"), folder, log)
    finally:
        page.goto("about:blank")
        stop(process)


def sim_keys(endpoint: str) -> tuple[set[str], set[str]]:
    """The AKs and the SKs of the simulator's users."""
    credentials = httpx.get(f"{endpoint}/_sim/credentials", timeout=10).json()
    return ({u["ak"] for u in credentials["users"] if u.get("ak")},
            {u["sk"] for u in credentials["users"] if u.get("sk")})  # fmt: skip


def holding(paths: list[Path], keys: set[str]) -> list[str]:
    """The files of ``paths`` that hold one of ``keys``."""
    return [p.name for p in paths if p.is_file() and any(k in p.read_bytes().decode(errors="replace") for k in keys)]


def assert_clean(project: Path, keys: tuple[set[str], set[str]]) -> None:
    """The tracked files are as committed and hold no SK; what the lab saved holds neither AK nor SK; the file of
    the simulator's line went with the lab. (The committed outputs show the seed-0 simulator's AK, an identifier,
    as every seeded simulator has it: only its SK would be a credential.)"""
    assert git(project, "status", "--porcelain", "--untracked-files=no") == ""
    tracked = [project / n for n in git(project, "ls-files").splitlines()]
    assert holding(tracked, keys[1]) == []
    saved = [p for p in (project / ".lab").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    assert len(saved) == len(CHARTS) and holding(saved, keys[0] | keys[1]) == []
    assert not (project / ".lab" / "simulator.json").exists()


def save(page: Page, path: Path) -> None:
    """Save the open notebook (Ctrl+S) and wait until the file on disk holds this run's outputs."""
    page.keyboard.press("Control+s")
    for _ in range(100):
        cells = json.loads(path.read_text())["cells"]
        if all(c.get("execution_count") for c in cells if c["cell_type"] == "code"):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"{path.name} was not saved with its outputs")


def preview_text(page: Page) -> str:
    return page.locator(".ims-nb-preview").first.inner_text()


def test_the_first_hour_in_the_lab(project: Path, page: tuple[Page, Any]) -> None:
    browser, _ = page
    port = free_port()
    command = ["lab", "--project", str(project), "--lab-port", str(port), "--lab-token", TOKEN]
    url = f"http://127.0.0.1:{port}"
    with serving(command, project, f"{url}/api/status?token={TOKEN}", url, browser) as lab:
        keys = sim_keys(lab.sim["endpoint"])
        for name in ("00_simulator.ipynb", "01_inventory.ipynb", "02_export.ipynb"):
            run_all_and_save(browser, lab.url, project, name)
        headless_says_what_is_true(browser)
        names, rule = three_images(lab.sim["endpoint"])
        exports_to_success(browser, names, rule)
        chart_the_batch(browser, names)
        picture(browser, "lab-02_export-after-the-batch")
        save(browser, project / ".lab" / "notebooks" / "02_export.ipynb")
        shut_down_kernel(browser)
        rows = ledger_rows(lab.ledger)
        assert sorted(rows["image_name"]) == sorted(names[:2]) and set(rows["status"]) == {"SUCCESS"}
        assert sorted(j["entities"]["image_name"] for j in lab.sim_state()["jobs"]) == sorted(names[:2])
        run_all_and_save(browser, lab.url, project, "03_job_durations.ipynb")  # exports a history first
        run_all_and_save(browser, lab.url, project, "04_coverage.ipynb")  # its coverage counts 02's exports
        shut_down_kernel(browser)
    assert_clean(project, keys)


def run_all_and_save(page: Page, url: str, project: Path, name: str) -> None:
    """Open ``name``, Run All: no cell raises and every chart renders; save it (its kernel stays up)."""
    open_notebook(page, url, name)
    run_all(page)
    assert errors(page) == [], name
    page.wait_for_function(
        "n => Array.from(document.querySelectorAll('.jp-OutputArea-output img'))"
        ".filter(img => img.complete && img.naturalWidth > 100).length >= n", arg=CHARTS[name])  # fmt: skip
    assert images_rendered(page) == CHARTS[name], name
    save(page, project / ".lab" / "notebooks" / name)
    picture(page, f"lab-{name.removesuffix('.ipynb')}")
    if name != "02_export.ipynb":
        shut_down_kernel(page)


def picture(page: Page, name: str) -> None:
    """The whole page as ``test-artifacts/<name>.png``."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def headless_says_what_is_true(page: Page) -> None:
    """After Run All under the lab the headless section picked nothing: each cell says so (no empty table, no
    empty axes), and nothing it printed contradicts the widgets above."""
    for source in ("headless.pick()", "headless.ask()", "headless.launch()", "headless.watched(done)",
                   "headless.chart("):  # fmt: skip
        assert cell_output(page, source).locator(".jp-OutputArea-output").inner_text().startswith("Nothing"), source
    assert cell_output(page, "headless.chart(").locator("img").count() == 0
    assert page.locator(".ims-nb-panel-report").inner_text().strip() == ""


def exports_to_success(page: Page, names: list[str], rule: str) -> None:
    """The click flow, and at each step what the preview and the panel say about the picks and their jobs."""
    pick_three(page, names, rule)
    assert "Nothing to launch" not in page.locator(".ims-nb-panel-report").inner_text()
    assert page.locator(".ims-nb-panel-launch").is_enabled()
    launch_two(page, names)
    own = page.locator(OWN_EXPORT)
    own.nth(1).wait_for()
    assert own.count() == 2 and "already-exporting" not in preview_text(page)
    page.wait_for_function(SUCCESSES, arg=2, timeout=120_000)
    monitor = page.locator(".ims-nb-monitor").first  # the notebook shows the monitor twice: the first view
    assert monitor.locator(".ims-nb-monitor-row").count() == 2
    assert "2 exports: 2 verified" in monitor.locator(".ims-nb-monitor-header").inner_text()
    page.wait_for_function(
        "() => document.querySelectorAll('.ims-nb-verdicts tr.ims-nb-verdict-exported').length === 2"
    )
    after = preview_text(page)
    assert "object-exists" not in after and "wait for that job to finish" not in after
    assert page.locator(".ims-nb-verdicts tr.ims-nb-verdict-error").count() == 1  # the refused one, still refused
    assert "exported" in page.locator(".ims-nb-plan").inner_text()


def chart_the_batch(page: Page, names: list[str]) -> None:
    """The headless cells re-run once the batch is done show it: its rows, and its duration chart."""
    rerun_cell(page, "done = await monitor.wait()")
    rerun_cell(page, "headless.chart(charts.plot_durations, done)")
    cell_output(page, "headless.chart(").locator("img").wait_for()
    assert images_rendered(page) >= 1 and errors(page) == []
    assert all(name in cell_output(page, "done = await monitor.wait()").inner_text() for name in names[:2])


def test_the_first_hour_in_the_app_with_a_mistyped_template(project: Path, page: tuple[Page, Any]) -> None:
    browser, _ = page
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serving(["app", "--app-port", str(port)], project, f"{url}voila/static/voila.js", url, browser) as app:
        keys = sim_keys(app.sim["endpoint"])
        names, rule = three_images(app.sim["endpoint"])
        browser.goto(app.url)
        browser.locator(".ims-nb-dashboard").wait_for()
        pick_three(browser, names, rule)
        template = browser.locator(".ims-nb-panel-template input")
        template.fill("{nme}-{id8}.{ext}")
        template.press("Enter")
        browser.wait_for_selector(".ims-nb-panel .ims-nb-log:has-text('nme')")
        assert "no images picked" not in preview_text(browser) and "3" in preview_text(browser)
        assert "pick images" not in browser.locator(".ims-nb-panel-plan").inner_text()
        assert browser.locator(".ims-nb-panel-launch").is_disabled()
        template.fill("{name}-{id8}.{ext}")
        template.press("Enter")
        browser.wait_for_selector(".ims-nb-plan:has-text('exportable')")
        assert browser.locator(".ims-nb-log:visible").count() == 0  # the planning error went with its cause
        launch_two(browser, names)
        browser.wait_for_function(SUCCESSES, arg=2, timeout=120_000)
        browser.wait_for_function(
            "() => document.querySelectorAll('.ims-nb-verdicts tr.ims-nb-verdict-exported').length === 2"
        )
        assert browser.locator(".ims-nb-log:visible").count() == 0
        assert "2 export(s) in the ledger" in browser.locator(".ims-nb-dashboard-charts-note").inner_text()
        rows = ledger_rows(app.ledger)
        assert sorted(rows["image_name"]) == sorted(names[:2])
    assert git(project, "status", "--porcelain", "--untracked-files=no") == ""
    assert holding([project / n for n in git(project, "ls-files").splitlines()], keys[1]) == []
