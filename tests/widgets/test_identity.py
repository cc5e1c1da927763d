"""Point 8 of issue 12 in the widgets: a ``JobMonitor`` connected to another simulator than the one that accepted
the exports shows none of them as its own, never polls them, and leaves every row unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ims_nb
from ims_nb.client import ImsClient
from ims_nb.exports.identity import ELSEWHERE
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator
from ims_nb.widgets.monitor import JobMonitor

BUCKET = "ims-exports-cn-north-4"


@pytest.fixture(scope="module")
def other_sim() -> Iterator[Simulator]:
    """Another simulator: same seed, project and access key as the session one; another endpoint."""
    with Simulator(seed=0, images=20, manual_clock=True) as simulator:
        yield simulator


@pytest.fixture()
def other_client(other_sim: Simulator, clean_env: Path) -> Iterator[ImsClient]:
    info = other_sim.info
    with ims_nb.connect(ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint) as client:
        yield client


@pytest.fixture()
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite") as opened:
        yield opened


@pytest.fixture()
def launched(sim_client: ImsClient, ledger: Ledger) -> pd.DataFrame:
    """Three exports running on the session simulator (manual clock: they stay live)."""
    plan = plan_exports(sim_client.images(imagetype="private"), bucket=BUCKET, key_template="mon/{id8}.{ext}",
                        quick=False, profile=SIMULATOR_PROFILE)  # fmt: skip
    frame = launch(plan[plan["exportable"].fillna(False).astype(bool)].head(3), client=sim_client, ledger=ledger,
                   max_rate=1000)  # fmt: skip
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
