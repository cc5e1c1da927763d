"""02_export.ipynb in JupyterLab, driven only through the page: pick three images (one refused), see why, launch,
watch two exports reach SUCCESS, chart their durations; then the ledger and the simulator hold exactly two exports."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from .flow import ledger_rows, pick_three_and_launch_two, three_images
from .lab_page import cell_output, errors, images_rendered, open_notebook, rerun_cell, run_all, shut_down_kernel

pytestmark = pytest.mark.filterwarnings("ignore::ims_nb.SimulatorWarning")


def test_pick_three_launch_and_watch_two_exports_in_jupyterlab(lab: Any, page: tuple[Page, Any]) -> None:
    browser, _ = page
    names, rule = three_images(lab.sim["endpoint"])
    open_notebook(browser, lab.url, "02_export.ipynb")
    run_all(browser)
    assert errors(browser) == []
    assert "Nothing launched headlessly" in cell_output(browser, "headless.launch()").inner_text()  # not a table
    pick_three_and_launch_two(browser, names, rule)
    monitor = browser.locator(".ims-nb-monitor").first  # the notebook shows the monitor twice: the first view
    browser.wait_for_function(
        "Array.from(document.querySelector('.ims-nb-monitor').querySelectorAll('.ims-nb-monitor-status')).filter("
        "e => e.innerText.startsWith('SUCCESS 100 %')).length === 2", timeout=120_000)  # fmt: skip
    assert monitor.locator(".ims-nb-monitor-row").count() == 2
    assert "2 exports: 2 verified" in monitor.locator(".ims-nb-monitor-header").inner_text()
    # the duration chart, re-run once the batch is done (the headless cells said they sent nothing under ims-nb lab)
    rerun_cell(browser, "done = await monitor.wait()")
    rerun_cell(browser, "headless.chart(charts.plot_durations, done)")
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
