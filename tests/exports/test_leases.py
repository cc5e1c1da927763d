"""Leases and exactly-once claims across hosts: heartbeat, expiry, release, unique live claims, launcher leases that
make a dead launcher's rows doubtful (and a live one's on another host not); on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import select

from ims_nb.client import ImsClient
from ims_nb.errors import ConfigError
from ims_nb.exports import ledger as ledger_module
from ims_nb.exports.identity import scoped
from ims_nb.exports.launch import launch, reconcile
from ims_nb.exports.leases import (
    ENV_HOST,
    ENV_LEASE_SECONDS,
    LEASE_SECONDS,
    Kind,
    Lease,
    is_holder,
    lease_seconds,
    this_host,
)
from ims_nb.exports.ledger import Ledger, current_owner
from ims_nb.exports.tables import exports, leases
from ims_nb.vocab import Action, State, Target
from tests.exports import test_ledger
from tests.exports.test_plan import sim_jobs

#: Each test runs on both engines (``where``, the exports conftest's, and the ledger tests' fixture: a new ledger on
#: SQLite, and on the suite's PostgreSQL).
ledger, claim = test_ledger.ledger, test_ledger.claim
TTL = 0.6


def lease_rows(ledger: Ledger) -> list[dict[str, Any]]:
    with ledger.transaction() as db:
        return [dict(row) for row in db.execute(select(leases)).mappings()]


def claim_key(ledger: Ledger, row_id: int) -> str | None:
    with ledger.transaction() as db:
        key: str | None = db.execute(select(exports.c.claim_key).where(exports.c.row_id == row_id)).scalar_one()
        return key


def test_a_lease_is_written_renewed_by_its_heartbeat_and_deleted_on_release(ledger: Ledger) -> None:
    with Lease(ledger, "launcher", ttl=TTL, user="alice") as lease:
        assert lease.holder.startswith(f"{this_host()}:")
        (row,) = lease_rows(ledger)
        assert (row["holder"], row["kind"], row["user"], row["host"]) == (lease.holder, "launcher", "alice",
                                                                          this_host())  # fmt: skip
        assert row["expires_at"] == pytest.approx(row["started_at"] + TTL)
        assert ledger.holder_alive(lease.holder)
        time.sleep(TTL * 2)  # several beats: the lease never lapses while its process lives
        assert ledger.holder_alive(lease.holder)
        (renewed,) = lease_rows(ledger)
        assert renewed["renewed_at"] > row["renewed_at"] and renewed["expires_at"] > time.time()
    assert lease_rows(ledger) == []
    assert not ledger.holder_alive(lease.holder)


def test_a_lease_without_heartbeat_expires_and_is_swept_by_the_next_start(ledger: Ledger) -> None:
    stale = Lease(ledger, "launcher", ttl=TTL)
    with ledger.transaction() as db:
        stale._insert(db, time.time())  # written, but never renewed: its process died
    assert ledger.holder_alive(stale.holder)
    time.sleep(TTL * 1.2)
    assert not ledger.holder_alive(stale.holder)
    assert ledger.holders_alive([stale.holder, None, "", current_owner()]) == {current_owner()}
    with Lease(ledger, "watcher", ttl=TTL) as fresh:
        assert [row["holder"] for row in lease_rows(ledger)] == [fresh.holder]


def test_renew_writes_a_lapsed_lease_again(ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    lease = Lease(ledger, "launcher", ttl=60)
    with caplog.at_level(logging.WARNING, logger="ims_nb"):
        lease.renew()
    assert ledger.holder_alive(lease.holder)
    assert "had lapsed" in caplog.text


def test_a_failed_heartbeat_logs_and_beats_again(ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    lease = Lease(ledger, "launcher", ttl=0.3).start()
    real = ledger.transaction
    failures = iter([OSError("database down"), OSError("database down")])

    def flaky() -> Any:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real()

    with caplog.at_level(logging.WARNING, logger="ims_nb"):
        ledger.transaction = flaky  # type: ignore[method-assign]
        time.sleep(0.6)
        del ledger.transaction
        assert "heartbeat failed (database down)" in caplog.text
        assert lease._beat is not None and lease._beat.is_alive()
        time.sleep(0.3)
        assert ledger.holder_alive(lease.holder)
    lease.release()


def test_the_host_and_the_time_to_live_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_HOST, "host-b")
    monkeypatch.delenv(ENV_LEASE_SECONDS, raising=False)
    assert this_host() == "host-b" and current_owner().startswith("host-b:")
    assert lease_seconds() == LEASE_SECONDS == 30
    monkeypatch.setenv(ENV_LEASE_SECONDS, "1.5")
    assert lease_seconds() == 1.5
    for bad in ("0", "-1", "soon"):
        monkeypatch.setenv(ENV_LEASE_SECONDS, bad)
        with pytest.raises(ConfigError, match=ENV_LEASE_SECONDS):
            lease_seconds()


# --- unique live claims ----------------------------------------------------------------------------


def test_a_claim_holds_the_images_live_claim_until_its_row_leaves_the_live_states(ledger: Ledger) -> None:
    row_id = claim(ledger, project_id="p-1")
    assert row_id is not None and claim_key(ledger, row_id) == "|p-1|img-1"
    ledger.update(row_id, state=State.SUBMITTED, job_id="job-1")
    assert claim_key(ledger, row_id) == "|p-1|img-1"  # still live
    ledger.update(row_id, state=State.FAILED)
    assert claim_key(ledger, row_id) is None
    again = claim(ledger, project_id="p-1")
    assert again is not None and claim_key(ledger, again) == "|p-1|img-1"


def test_the_unique_claim_alone_stops_a_second_live_claim(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    first = claim(ledger)
    assert first is not None
    monkeypatch.setattr(ledger_module, "verdict", lambda *_, **__: (Action.LAUNCH, "as if a racer saw no row"))
    assert claim(ledger) is None  # the insert did nothing: another process holds the claim
    assert [row["row_id"] for row in ledger.rows()] == [first]


def test_threads_with_ledgers_of_their_own_claiming_one_image_get_exactly_one_row(where: str) -> None:
    Ledger(where).close()  # the schema exists before the race
    opened = [Ledger(where) for _ in range(8)]
    start = threading.Barrier(len(opened))

    def race(each: Ledger) -> int | None:
        start.wait()
        return claim(each, force=True)  # even forced: the claim's holder (this process) is alive

    with ThreadPoolExecutor(max_workers=len(opened)) as pool:
        answers = list(pool.map(race, opened))
    winners = [answer for answer in answers if answer is not None]
    assert len(winners) == 1, answers
    assert [row["row_id"] for row in opened[0].rows()] == winners
    for each in opened:
        each.close()


def test_force_supersedes_the_live_claim_of_a_holder_that_is_gone_only(ledger: Ledger) -> None:
    gone = Lease(ledger, Kind.LAUNCHER)  # never started: its process died before its first beat
    first = claim(ledger, owner=gone.holder)
    assert first is not None
    assert claim(ledger) is None  # not forced: the live row blocks
    forced = claim(ledger, force=True)
    assert forced is not None
    old = ledger.row(first)
    assert old["state"] == State.SUBMITTING and claim_key(ledger, first) is None
    assert old["note"] == f"superseded by a forced launch: its holder {gone.holder} is gone"
    with Lease(ledger, Kind.LAUNCHER) as alive:
        ledger.update(forced, owner=alive.holder)
        assert claim(ledger, force=True) is None  # never two live exports
    assert [row["row_id"] for row in ledger.rows()] == [first, forced]


# --- launcher leases -------------------------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from ims_nb.exports.leases import Lease
    from ims_nb.exports.ledger import Ledger

    lease = Lease(Ledger(sys.argv[1]), "launcher", ttl=float(sys.argv[2])).start()
    print(lease.holder, flush=True)
    time.sleep(600)
    """
)


@contextmanager
def launcher(where: str, ttl: float, host: str | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A process holding a launcher's lease (on ``host``, as ``IMS_NB_HOST`` says), and its holder id."""
    env = {**os.environ, ENV_HOST: host} if host else dict(os.environ)
    process = subprocess.Popen([sys.executable, "-c", HOLDER, where, str(ttl)], stdout=subprocess.PIPE, text=True,
                               env=env)  # fmt: skip
    try:
        assert process.stdout is not None
        yield process, process.stdout.readline().strip()
    finally:
        process.kill()
        process.wait(timeout=30)


def claim_rows(ledger: Ledger, client: ImsClient, rows: pd.DataFrame, owner: str) -> list[int]:
    """The rows claimed as ``owner`` would, cut off before their POSTs (``submitting``)."""
    bound = scoped(ledger, client)
    claimed = [bound.claim(image_id=row["image_id"], target=Target.parse(row["bucket_url"]), image_name=row["name"],
                           file_format=row["file_format"], quick=False, size_bytes=None, region=None, owner=owner)
               for row in rows.to_dict("records")]  # fmt: skip
    assert None not in claimed
    return [row_id for row_id in claimed if row_id is not None]


@pytest.mark.parametrize("host", [None, "host-b"])
def test_a_killed_launchers_rows_become_doubtful_and_are_reconciled(
    where: str, ledger: Ledger, client: ImsClient, rows: pd.DataFrame, control: httpx.Client, host: str | None
) -> None:
    """On this host a killed launcher is known gone at once (its pid); on another, once its lease expires."""
    ttl = 3.0
    with launcher(where, ttl, host) as (process, holder):
        claimed = claim_rows(ledger, client, rows.head(2), holder)
        assert reconcile(ledger, client).empty  # alive: its rows are its own
        process.kill()  # SIGKILL: no release, the lease stays until it expires
        process.wait(timeout=30)
        if host is not None:
            assert reconcile(ledger, client).empty  # its lease still runs: it may be alive, for all we know here
            time.sleep(ttl)
        settled = reconcile(ledger, client)
    assert sorted(settled["row_id"]) == claimed
    assert [ledger.row(row_id)["state"] for row_id in claimed] == [State.SUBMITTED] * 2
    assert len(sim_jobs(control)) == 2


def test_a_live_launcher_on_another_host_keeps_its_rows(
    where: str, ledger: Ledger, client: ImsClient, rows: pd.DataFrame, control: httpx.Client
) -> None:
    with launcher(where, TTL, host="host-b") as (process, holder):
        assert holder.startswith("host-b:") and this_host() != "host-b"
        claimed = claim_rows(ledger, client, rows.head(2), holder)
        time.sleep(TTL * 2)  # past its first lease: the heartbeat keeps it
        assert ledger.holder_alive(holder)
        assert reconcile(ledger, client).empty  # a pid on host-b means nothing here; its lease does
        assert sim_jobs(control) == []
        process.kill()
        process.wait(timeout=30)
    time.sleep(TTL)
    assert sorted(reconcile(ledger, client)["row_id"]) == claimed
    assert len(sim_jobs(control)) == 2


def test_launch_holds_a_launcher_lease_for_the_batch(ledger: Ledger, client: ImsClient, rows: pd.DataFrame) -> None:
    launched = launch(rows.head(2), client=client, ledger=ledger, max_rate=1000)
    owners = set(launched["owner"])
    assert len(owners) == 1 and is_holder(owners.pop())
    assert lease_rows(ledger) == []  # released with the batch
    with Lease(ledger, Kind.LAUNCHER) as mine:
        again = launch(rows.iloc[2:4], client=client, ledger=ledger, max_rate=1000, lease=mine)
        assert set(again["owner"]) == {mine.holder}
        assert [row["holder"] for row in lease_rows(ledger)] == [mine.holder]
