"""02_export.ipynb in JupyterLab, driven only through the page: pick three images (one refused), see why, launch,
watch two exports reach SUCCESS, chart their durations; then the ledger and the simulator hold exactly two exports."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Page

import ims_nb
from ims_nb.rules import SIMULATOR_PROFILE

from .lab_page import errors, images_rendered, open_notebook, rerun_cell, run_all, shut_down_kernel

pytestmark = pytest.mark.filterwarnings("ignore::ims_nb.SimulatorWarning")


def operator_client(endpoint: str) -> ims_nb.ImsClient:
    """The simulator's operator, signed in with keys read from its control plane (as the notebook's kernel is)."""
    credentials = httpx.get(f"{endpoint}/_sim/credentials", timeout=10).json()
    operator = next(u for u in credentials["users"] if u["name"] == "ims-operator")
    return ims_nb.connect(credentials["region"], ak=operator["ak"], sk=operator["sk"],
                          project_id=credentials["project_id"], endpoint=endpoint)  # fmt: skip


def three_images(endpoint: str) -> tuple[list[str], str]:
    """Two small exportable images and one refused private one (by the simulator's rules), and its first rule."""
    with operator_client(endpoint) as client:
        images = client.images()
        summary = ims_nb.preflight_summary(images, bucket_url="ims-exports-cn-north-4:{name}-{id8}.{ext}",
                                           file_format="vhd", client=client, profile=SIMULATOR_PROFILE)  # fmt: skip
    frame = images.assign(exportable=summary["exportable"].to_numpy(), blocking=summary["blocking"].to_numpy())
    frame = frame.sort_values(["size_bytes", "name"])
    good = frame[frame["exportable"].astype(bool)]["name"].head(2).tolist()
    bad = frame[~frame["exportable"].astype(bool) & (frame["image_type"] == "private")].iloc[0]
    return [*good, str(bad["name"])], str(bad["blocking"][0])


def pick(page: Page, name: str) -> None:
    search = page.locator(".ims-nb-picker-search input")
    search.fill(name)
    page.wait_for_selector(".ims-nb-picker-paging:has-text('· 1 matching')")
    row = page.locator(f".ims-nb-picker-row:has-text('{name} ·')")  # the row of this search, not the last one's
    row.wait_for()
    row.locator("input[type=checkbox]").check()


def ledger_rows(path: Any) -> pd.DataFrame:
    with sqlite3.connect(path) as db:
        return pd.read_sql_query("SELECT image_name, state, status FROM exports", db)


def test_pick_three_launch_and_watch_two_exports_in_jupyterlab(lab: Any, page: tuple[Page, Any]) -> None:
    browser, _ = page
    names, rule = three_images(lab.sim["endpoint"])
    open_notebook(browser, lab.url, "02_export.ipynb")
    run_all(browser)
    assert errors(browser) == []
    for name in names:
        pick(browser, name)
    browser.wait_for_selector(".ims-nb-picker-summary:has-text('3 picked (1 not exportable)')", timeout=10_000)
    refused = browser.locator(".ims-nb-verdicts tr.ims-nb-verdict-error")
    refused.wait_for()
    assert names[2] in refused.inner_text()
    assert rule in browser.locator(".ims-nb-verdicts").inner_text()
    browser.locator(".ims-nb-panel-bucket select").select_option(label="ims-exports-cn-north-4 (STANDARD, cn-north-4)")
    browser.locator(".ims-nb-panel-format select").select_option(label="vhd")
    browser.wait_for_selector(".ims-nb-plan:has-text('vhd')")
    browser.click(".ims-nb-panel-launch")
    browser.wait_for_selector(".ims-nb-panel-confirm:visible")
    assert "1 refused image(s) will be skipped" in browser.locator(".ims-nb-panel-question").inner_text()
    browser.click(".ims-nb-panel-confirm")
    browser.wait_for_selector(".ims-nb-panel-report:has-text('launched 2')")
    assert f"skipped {names[2]}" in browser.locator(".ims-nb-panel-report").inner_text()
    monitor = browser.locator(".ims-nb-monitor").first  # the notebook shows the monitor twice: the first view
    browser.wait_for_function(
        "Array.from(document.querySelector('.ims-nb-monitor').querySelectorAll('.ims-nb-monitor-status')).filter("
        "e => e.innerText.startsWith('SUCCESS 100 %')).length === 2", timeout=120_000)  # fmt: skip
    assert monitor.locator(".ims-nb-monitor-row").count() == 2
    assert "2 exports: 2 verified" in monitor.locator(".ims-nb-monitor-header").inner_text()
    # the duration chart, re-run once the batch is done (the headless cells picked nothing under ims-nb lab)
    rerun_cell(browser, "done = await monitor.wait()")
    rerun_cell(browser, "ax = charts.plot_durations(done)")
    chart = browser.locator(
        ".jp-CodeCell:has(.jp-InputArea-editor:has-text('plot_durations')) .jp-OutputArea-output img"
    )
    chart.wait_for()
    assert images_rendered(browser) >= 1 and errors(browser) == []
    done = browser.locator(".jp-CodeCell:has(.jp-InputArea-editor:has-text('await monitor.wait()')) .jp-OutputArea")
    assert all(name in done.inner_text() for name in names[:2])
    shut_down_kernel(browser)
    rows = ledger_rows(lab.ledger)
    assert sorted(rows["image_name"]) == sorted(names[:2]) and set(rows["status"]) == {"SUCCESS"}
    jobs = lab.sim_state()["jobs"]
    assert sorted(j["entities"]["image_name"] for j in jobs) == sorted(names[:2])
