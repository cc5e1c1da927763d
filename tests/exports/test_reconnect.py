"""The ledger rides out a PostgreSQL restart: reads run again, write transactions are replayed, exactly once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError

from ims_nb.errors import ConfigError
from ims_nb.exports import reconnect
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.tables import exports
from ims_nb.vocab import State, Target
from tests.pg import PgServer

SERIES = 120


@pytest.fixture()
def ledger(pg_database: str) -> Iterator[Ledger]:
    with Ledger(pg_database) as opened:
        yield opened


def claim(ledger: Ledger, image_id: str) -> int | None:
    return ledger.claim(image_id=image_id, target=Target("bucket", f"{image_id}.qcow2"), image_name=image_id,
                        file_format="qcow2", quick=False, size_bytes=1, region="cn-north-4")  # fmt: skip


def terminate_others(pg_server: PgServer, database: str) -> None:
    """End every other session on ``database``, as a fast shutdown does (the sessions see 57P01)."""
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))


@pytest.mark.timeout(120)
def test_claims_and_updates_ride_out_a_server_restart(ledger: Ledger, pg_server: PgServer) -> None:
    done: list[int] = []
    errors: list[BaseException] = []

    def series() -> None:
        try:
            for n in range(SERIES):
                row_id = claim(ledger, f"img-{n:04d}")
                assert row_id is not None
                ledger.update(row_id, state=State.SUBMITTED, job_id=f"job-{n}")
                done.append(row_id)
        except BaseException as exc:  # noqa: BLE001 (reported by the test thread)
            errors.append(exc)

    worker = threading.Thread(target=series)
    worker.start()
    while len(done) < SERIES // 4 and worker.is_alive():
        threading.Event().wait(0.01)
    pg_server.restart(down_for=2)
    worker.join(90)
    assert not errors, errors
    rows = ledger.rows()
    assert len(done) == len(rows) == SERIES
    assert [r["row_id"] for r in rows] == done
    assert {r["state"] for r in rows} == {State.SUBMITTED.value}
    assert [r["job_id"] for r in rows] == [f"job-{n}" for n in range(SERIES)]


def test_a_transaction_cut_off_midway_is_replayed_with_the_same_row_id(
    ledger: Ledger, pg_server: PgServer, pg_database: str
) -> None:
    database = pg_database.rsplit("/", 1)[1]
    with ledger._transaction() as db:
        inserted = db.execute(exports.insert().values(image_id="i", bucket="b", object_key="k", quick=0,
                                                      state=State.SUBMITTING.value, created_at=1.0, updated_at=1.0)
                              .returning(exports.c.row_id)).scalar_one()  # fmt: skip
        terminate_others(pg_server, database)
        again = db.execute(select(exports.c.row_id).where(exports.c.image_id == "i")).scalar_one()
    assert again == inserted
    assert [r["row_id"] for r in ledger.rows()] == [inserted]


def test_a_commit_whose_answer_was_lost_is_not_written_twice(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    real_commit = Connection.commit
    lost_once = threading.Event()

    def commit_then_lose_the_answer(self: Connection) -> None:
        real_commit(self)
        if not lost_once.is_set():
            lost_once.set()
            raise DBAPIError("COMMIT", None, psycopg.OperationalError("server closed the connection"), False, True)

    monkeypatch.setattr(Connection, "commit", commit_then_lose_the_answer)
    assert claim(ledger, "img-1") is not None
    assert lost_once.is_set()
    assert [r["image_id"] for r in ledger.rows()] == ["img-1"]
    lost_once.clear()  # a claim that only read (the image is live): nothing to commit, the lost answer no matter
    assert claim(ledger, "img-1") is None
    assert lost_once.is_set()
    assert [r["image_id"] for r in ledger.rows()] == ["img-1"]


def test_a_server_that_stays_away_is_a_clear_error_naming_the_ledger_without_its_password(
    pg_server: PgServer, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-pw"  # the throwaway server trusts loopback: any password opens it
    with Ledger(pg_database.replace("postgres@", f"postgres:{secret}@")) as ledger:
        monkeypatch.setattr(reconnect, "RECONNECT_FOR", 1.0)
        pg_server.stop()
        try:
            with pytest.raises(ConfigError, match=r"the ledger postgresql\+psycopg://postgres:\*\*\*@.* has been "
                                                  r"unreachable for 1 s") as raised:  # fmt: skip
                ledger.rows()
            with pytest.raises(ConfigError, match="unreachable"):
                claim(ledger, "img-1")
        finally:
            pg_server.start()
    assert secret not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_errors_that_are_not_a_lost_server_are_not_retried() -> None:
    calls: list[int] = []

    def bad() -> Any:
        calls.append(1)
        raise DBAPIError("SELECT", None, psycopg.errors.UndefinedTable("no such table"), False)

    with pytest.raises(DBAPIError):
        reconnect.retrying(bad, reconnect.Patience("ledger"))
    assert calls == [1]
    assert reconnect.lost(DBAPIError("x", None, psycopg.OperationalError("the database system is starting up"), False))
    assert not reconnect.lost(ValueError("connection refused"))
