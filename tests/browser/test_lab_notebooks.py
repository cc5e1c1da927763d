"""01_inventory and 03_job_durations in JupyterLab: run all from the menu; every chart renders and no cell raises."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from .lab_page import errors, images_rendered, open_notebook, run_all, shut_down_kernel

#: Each notebook and the charts it draws (one figure per chart cell).
CHARTS = {"01_inventory.ipynb": 2, "03_job_durations.ipynb": 4}


@pytest.mark.parametrize("notebook", list(CHARTS))
def test_every_chart_renders_and_no_cell_raises(lab: Any, page: tuple[Page, Any], notebook: str) -> None:
    browser, _ = page
    open_notebook(browser, lab.url, notebook)
    run_all(browser)
    browser.wait_for_function(
        "n => Array.from(document.querySelectorAll('.jp-OutputArea-output img'))"
        ".filter(img => img.complete && img.naturalWidth > 100).length >= n", arg=CHARTS[notebook])  # fmt: skip
    assert errors(browser) == []
    assert images_rendered(browser) == CHARTS[notebook]
    prompts = browser.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
    assert prompts and all(p.strip() not in ("[ ]:", "[*]:") for p in prompts)
    browser.locator(".jp-Notebook .jp-Cell").last.scroll_into_view_if_needed()
    shut_down_kernel(browser)
