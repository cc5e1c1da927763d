"""Point 8 of issue 12 in the widgets: a ``JobMonitor`` connected to another simulator than the one that accepted
the exports shows none of them as its own, never polls them, and leaves every row unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest

from ims_nb.client import ImsClient
from ims_nb.exports.identity import ELSEWHERE
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.widgets.monitor import JobMonitor
from tests.helpers import exportable_plan


@pytest.fixture()
def launched(sim_client: ImsClient, ledger: Ledger) -> pd.DataFrame:
    """Three exports running on the session simulator (manual clock: they stay live)."""
    three = exportable_plan(sim_client, key_template="mon/{id8}.{ext}").head(3)
    frame = launch(three, client=sim_client, ledger=ledger, max_rate=1000)
    assert len(frame) == 3
    return frame


def _unchanged(ledger: Ledger, before: list[dict[str, Any]]) -> None:
    assert ledger.rows(every_account=True) == before


def test_a_monitor_connected_elsewhere_follows_none_of_the_rows_by_default(
    launched: pd.DataFrame, other_client: ImsClient, ledger: Ledger
) -> None:
    before = ledger.rows(every_account=True)
    monitor = JobMonitor(other_client, ledger, timeout=30)
    assert repr(monitor) == "JobMonitor(no exports)"  # the live rows are another account's
    frame = asyncio.run(monitor.wait())
    assert frame.empty
    _unchanged(ledger, before)


def test_a_monitor_connected_elsewhere_shows_the_rows_it_is_given_but_leaves_them_unchanged(
    launched: pd.DataFrame, other_client: ImsClient, ledger: Ledger
) -> None:
    before = ledger.rows(every_account=True)
    monitor = JobMonitor(other_client, ledger, timeout=30).follow(launched)
    frame = asyncio.run(monitor.wait())
    assert len(frame) == 3 and frame["belongs_to"].str.startswith(ELSEWHERE).all()
    assert set(frame["state"]) == {r["state"] for r in before}
    _unchanged(ledger, before)
