"""Leases and exactly-once claims across hosts: heartbeat, expiry, release, unique live claims, launcher leases that
make a dead launcher's rows doubtful (and a live one's on another host not); on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from sqlalchemy import select

from ims_nb.errors import ConfigError
from ims_nb.exports.leases import ENV_HOST, ENV_LEASE_SECONDS, LEASE_SECONDS, Lease, lease_seconds, this_host
from ims_nb.exports.ledger import Ledger, current_owner
from ims_nb.exports.tables import leases
from tests.exports import test_ledger

#: Each test runs on both engines (the ledger tests' fixtures: a new ledger on SQLite, and on the suite's PostgreSQL).
where, ledger = test_ledger.where, test_ledger.ledger
TTL = 0.6


def lease_rows(ledger: Ledger) -> list[dict[str, Any]]:
    with ledger.transaction() as db:
        return [dict(row) for row in db.execute(select(leases)).mappings()]


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
