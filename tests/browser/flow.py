"""The export flow both browser tests drive, through the page only: pick three images, explain, launch two."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pandas as pd
from playwright.sync_api import Page

import ims_nb
from ims_nb.rules import SIMULATOR_PROFILE

BUCKET = "ims-exports-cn-north-4 (STANDARD, cn-north-4)"


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


def pick_three_and_launch_two(page: Page, names: list[str], rule: str) -> None:
    """Pick the three images, see the refused one explained, choose bucket and format, Launch and Confirm."""
    pick_three(page, names, rule)
    launch_two(page, names)


def pick_three(page: Page, names: list[str], rule: str) -> None:
    """Pick the three images and see the refused one explained by ``rule``."""
    for name in names:
        pick(page, name)
    page.wait_for_selector(".ims-nb-picker-summary:has-text('3 picked (1 not exportable)')", timeout=10_000)
    refused = page.locator(".ims-nb-verdicts tr.ims-nb-verdict-error")
    refused.wait_for()
    assert names[2] in refused.inner_text()
    assert rule in page.locator(".ims-nb-verdicts").inner_text()


def launch_two(page: Page, names: list[str]) -> None:
    """Choose bucket and format, Launch, see the refused one will be skipped, Confirm, see two launched."""
    page.locator(".ims-nb-panel-bucket select").select_option(label=BUCKET)
    page.locator(".ims-nb-panel-format select").select_option(label="vhd")
    page.wait_for_selector(".ims-nb-plan:has-text('vhd')")
    page.click(".ims-nb-panel-launch")
    page.wait_for_selector(".ims-nb-panel-confirm:visible")
    assert "1 refused image(s) will be skipped" in page.locator(".ims-nb-panel-question").inner_text()
    page.click(".ims-nb-panel-confirm")
    page.wait_for_selector(".ims-nb-panel-report:has-text('launched 2')")
    assert f"skipped {names[2]}" in page.locator(".ims-nb-panel-report").inner_text()
