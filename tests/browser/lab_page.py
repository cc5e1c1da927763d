"""Driving JupyterLab through its page only: open a notebook, run all cells from the menu, read what the cells show."""

from __future__ import annotations

import time

from playwright.sync_api import Locator, Page

from .servers import TOKEN

IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
#: The prompts of the open notebook's code cells ("[ ]:", "[*]:", "[3]:"), as a JS expression.
PROMPTS = (
    "Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt'), e => e.innerText.trim())"
)


def open_notebook(page: Page, base_url: str, name: str) -> None:
    page.goto(f"{base_url}/lab/tree/{name}?token={TOKEN}&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    wait_for_kernel(page)


def wait_for_kernel(page: Page) -> None:
    """Until the status bar says the notebook's kernel is connected and idle (before that, a run is dropped)."""
    page.wait_for_selector(".jp-StatusBar-TextItem:text-is('Python 3 (ipykernel) | Idle')")


def menu(page: Page, top: str, item: str) -> None:
    page.click(f".lm-MenuBar-itemLabel:text-is('{top}')")
    page.click(f".lm-Menu-itemLabel:text-is('{item}')")


def run_all(page: Page, timeout: float = 240.0) -> None:
    """Clear the stored outputs, Run > Run All Cells, then wait until every code cell ran and the kernel is idle.

    Clearing first means that what the test sees afterwards was produced by this run, not stored in the file.
    """
    menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function(f"{PROMPTS}.every(p => p === '[ ]:')")
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(f"{PROMPTS}.some(p => p === '[*]:' || /^\\[\\d+\\]:$/.test(p))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        prompts = page.evaluate(PROMPTS)
        if all(p.strip() not in ("[*]:", "[ ]:") for p in prompts) and page.locator(IDLE).count():
            return
        page.wait_for_timeout(250)
    raise TimeoutError(f"the notebook was still running after {timeout:.0f} s")


def rerun_cell(page: Page, source: str) -> None:
    """Select the code cell whose source contains ``source`` and run it in place (Ctrl+Enter), as a user would."""
    cell = page.locator(code_cell(source)).first
    prompt = cell.locator(".jp-InputArea-prompt")
    before = prompt.inner_text()
    prompt.click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "([cell, before]) => { const p = cell.querySelector('.jp-InputArea-prompt').innerText.trim();"
        " return p !== before.trim() && p !== '[*]:'; }", arg=[cell.element_handle(), before])  # fmt: skip


def cell_output(page: Page, source: str) -> Locator:
    """The output area of the code cell whose source contains ``source``."""
    return page.locator(f"{code_cell(source)} .jp-OutputArea").first


def code_cell(source: str) -> str:
    """A selector for the code cells whose source contains ``source``."""
    return f".jp-Notebook .jp-CodeCell:has(.jp-InputArea-editor:has-text('{source}'))"


def errors(page: Page) -> list[str]:
    """The text of every error output (a cell that raised)."""
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").all_inner_texts()


def images_rendered(page: Page) -> int:
    """Figures whose PNG has loaded with a size (charts that rendered)."""
    return int(page.evaluate(
        "Array.from(document.querySelectorAll('.jp-OutputArea-output img'))"
        ".filter(img => img.complete && img.naturalWidth > 100 && img.naturalHeight > 100).length"
    ))  # fmt: skip


def shut_down_kernel(page: Page) -> None:
    menu(page, "Kernel", "Shut Down Kernel")
    page.wait_for_timeout(500)
