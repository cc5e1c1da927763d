"""``ims_nb.widgets.monitor_text``: what the export monitor shows of a ledger row, without a widget."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from ims_nb.vocab import State
from ims_nb.widgets import monitor, monitor_text
from ims_nb.widgets.monitor_text import (
    STALLED,
    bar_style,
    header_text,
    region_heading,
    row_text,
    summary,
    who_text,
)


@pytest.mark.parametrize(
    ("state", "style"),
    [
        (State.VERIFIED, "success"),
        (State.SUCCEEDED, "success"),
        (State.FAILED, "danger"),
        (State.MISSING, "danger"),
        (State.REFUSED, "danger"),
        (State.RUNNING, "info"),
        (State.UNKNOWN, "info"),
    ],
)
def test_the_bar_is_green_for_a_file_red_for_none_blue_while_running(state: State, style: str) -> None:
    assert bar_style(state.value) == style


def test_a_running_row_shows_status_percent_state_eta_and_stall() -> None:
    row = {"state": State.RUNNING.value, "status": "RUNNING", "process_percent": 35.4}
    assert row_text(row) == "RUNNING 35 % · running"
    assert row_text(row, eta_seconds=720.0, stalled=True) == f"RUNNING 35 % · running · ETA 12 min · {STALLED}"


def test_a_failed_row_shows_its_error_escaped_and_no_eta() -> None:
    row: dict[str, Any] = {"state": State.FAILED.value, "error_code": "IMG.0019", "fail_reason": "disk <full>"}
    assert row_text(row, eta_seconds=60.0, stalled=True) == "failed · IMG.0019: disk &lt;full&gt;"
    assert row_text({"state": State.REFUSED.value, "note": "no bucket"}) == "refused · no bucket"
    assert row_text({"state": State.VERIFIED.value, "status": "SUCCESS", "process_percent": 100.0}) == (
        "SUCCESS 100 % · verified"
    )


def test_who_launched_a_row_and_where() -> None:
    assert who_text({"launched_user": "ann", "launched_by": "AK 1", "launched_host": "hub-1"}) == "ann @ hub-1"
    assert who_text({"launched_user": None, "launched_by": "AK 1"}) == "AK 1"
    assert who_text({}) == ""


def test_the_summary_counts_states_in_their_life_order() -> None:
    assert summary([]) == "no exports"
    assert summary(["verified"]) == "1 export: 1 verified"
    assert summary(["verified", "running", "verified"]) == "3 exports: 1 running, 2 verified"


def test_a_region_heading_and_the_header_are_escaped_html() -> None:
    assert region_heading("<r>", ["running"]) == "<b>&lt;r&gt;</b> · 1 export: 1 running"
    assert header_text(["running"], True, "clock ×2 <fast>", "12:00:00") == (
        "<b>1 export: 1 running</b> · watching · clock ×2 &lt;fast&gt; · updated 12:00:00"
    )
    assert header_text([], False, "", "12:00:00") == "<b>no exports</b> · updated 12:00:00"


def test_the_monitor_module_still_offers_the_names_that_moved() -> None:
    moved = ("FAILED", "STALLED", "SEPARATOR", "BarStyle", "bar_style", "human_eta", "clock_note", "row_text",
             "who_text", "summary", "region_of", "by_region")  # fmt: skip
    assert all(getattr(monitor, name) is getattr(monitor_text, name) for name in moved)


def test_the_text_needs_no_widget_library() -> None:
    code = "import sys, ims_nb.widgets.monitor_text; print('ipywidgets' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
