"""``ims-nb app`` in Debian's chromium, driven only through the page: pick three images (one refused), see why, launch,
watch two exports reach SUCCESS, see the charts redrawn; then the ledger and the simulator hold exactly two exports,
and the page asked nothing of any host but the machine's own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page

from .flow import ledger_rows, pick_three_and_launch_two, three_images
from .servers import Server, clean_env, free_port, sim_line, stop, wait_ready

pytestmark = pytest.mark.filterwarnings("ignore::ims_nb.SimulatorWarning")

DURATIONS = "img.ims-nb-dashboard-durations"
NOTE = ".ims-nb-dashboard-charts-note"
#: The durations chart's ``src`` once a PNG other than ``old`` has loaded with a real size, else null.
#: Where the page may send requests: the app's own servers on the loopback (and inline data).
LOCAL = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:")
#: The left and right edges of an element, or null.
EDGES = "(sel) => { const e = document.querySelector(sel); if (!e) return null; const r = e.getBoundingClientRect();" \
        " return [r.left, r.right]; }"  # fmt: skip
NEW_CHART = ("([sel, old]) => { const img = document.querySelector(sel); return img && img.src !== old"
             " && img.complete && img.naturalWidth > 300 && img.naturalHeight > 150 ? img.src : null; }")  # fmt: skip


@pytest.fixture()
def app(tmp_path: Path) -> Iterator[Server]:
    """``ims-nb app`` (simulator at 600x + Voilà) on free ports, its state in ``tmp_path``; stopped after."""
    state = tmp_path / "sim-state.sqlite"
    port, log = free_port(), tmp_path / "app.log"
    env = clean_env() | {"HUAWEICLOUD_SDK_CREDENTIALS_FILE": str(tmp_path / "no-credentials")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ims_nb", "app", "--port", "0", "--app-port", str(port), "--time-scale", "600",
             "--state", str(state)],
            stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
    try:
        sim = sim_line(log, process)
        url = f"http://127.0.0.1:{port}/"
        wait_ready(f"{url}voila/static/voila.js", process, log)  # not `/`: each GET of it runs the notebook anew
        yield Server(process, url, sim, Path(f"{state}.ledger.sqlite"), tmp_path, log)
    finally:
        stop(process)


def test_pick_three_launch_and_watch_two_exports_in_the_app(app: Any, page: tuple[Page, Any]) -> None:
    browser, _ = page
    requests: list[str] = []
    console_errors: list[str] = []
    browser.on("request", lambda request: requests.append(request.url))
    browser.on("console", lambda message: _keep_error(message, console_errors))
    names, rule = three_images(app.sim["endpoint"])
    browser.goto(app.url)  # answers once the notebook has run: the dashboard is in the page
    browser.locator(".ims-nb-dashboard").wait_for()
    assert browser.locator(".ims-nb-dashboard-simulator").is_visible()
    assert "SIMULATOR" in browser.locator(".ims-nb-dashboard-simulator").inner_text()
    assert app.sim["endpoint"] in browser.locator(".ims-nb-dashboard-header").inner_text()
    assert "open_dashboard" not in browser.content() and browser.locator(".jp-InputArea").count() == 0
    before = browser.wait_for_function(NEW_CHART, arg=[DURATIONS, None]).json_value()  # the empty ledger's chart
    assert "0 export(s) in the ledger: 0 running, 0 finished" in browser.locator(NOTE).inner_text()
    search, picker = browser.evaluate(EDGES, ".ims-nb-picker-search"), browser.evaluate(EDGES, ".ims-nb-picker")
    assert picker[0] <= search[0] and search[1] <= picker[1], f"search box {search} out of the picker {picker}"

    pick_three_and_launch_two(browser, names, rule)
    browser.wait_for_selector(f"{NOTE}:has-text('2 export(s) in the ledger: 2 running, 0 finished')")
    browser.wait_for_selector(".ims-nb-monitor-header:has-text('simulator clock ×600: ETAs in real time')")

    browser.wait_for_function(
        "() => Array.from(document.querySelectorAll('.ims-nb-monitor .ims-nb-monitor-status'))"
        ".filter(e => e.innerText.startsWith('SUCCESS 100 %')).length === 2", timeout=120_000)  # fmt: skip
    assert browser.locator(".ims-nb-monitor .ims-nb-monitor-row").count() == 2
    browser.wait_for_selector(".ims-nb-monitor-header:has-text('2 exports: 2 verified')")
    browser.wait_for_selector(f"{NOTE}:has-text('2 export(s) in the ledger: 0 running, 2 finished')")
    after = browser.wait_for_function(NEW_CHART, arg=[DURATIONS, before]).json_value()  # redrawn when the watch ended
    assert after != before and browser.locator("img.ims-nb-dashboard-timeline").is_visible()
    assert browser.locator(".ims-nb-log:visible").count() == 0  # no widget logged a note or an error
    height = browser.evaluate("document.querySelector('.ims-nb-dashboard').scrollHeight")
    browser.set_viewport_size({"width": 1400, "height": int(height) + 40})  # Voilà's body scrolls: show it all

    rows = ledger_rows(app.ledger)
    assert sorted(rows["image_name"]) == sorted(names[:2]) and set(rows["status"]) == {"SUCCESS"}
    jobs = app.sim_state()["jobs"]
    assert sorted(j["entities"]["image_name"] for j in jobs) == sorted(names[:2])
    outside = [url for url in requests if not url.startswith(LOCAL)]
    assert outside == [], f"the page asked hosts outside the machine: {outside}"
    assert [e for e in console_errors if any(word in e.lower() for word in ("font", "css", "awesome"))] == []


def _keep_error(message: ConsoleMessage, errors: list[str]) -> None:
    if message.type == "error":
        errors.append(f"{message.text} ({message.location.get('url', '')})")
