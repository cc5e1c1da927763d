"""A ledger that rides out its database server's restart: reads run again, write transactions are replayed."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar, cast

from sqlalchemy import Connection, Insert, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase

from ims_nb.errors import ConfigError
from ims_nb.exports.engines import POSTGRESQL, WRITE, reason

log = logging.getLogger("ims_nb")


#: Seconds a ledger waits for its database server to come back (a restart, a fail-over) before it gives up.
RECONNECT_FOR: Final = 30.0
#: SQLSTATEs of a server going away or not there yet: admin/crash shutdown, cannot connect now, connection exceptions.
LOST_SQLSTATES: Final = frozenset({"57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"})
#: What psycopg says when the server is away (refused, stopping, starting, the connection cut).
LOST_SIGNS: Final = ("connection refused", "the database system is", "server closed the connection",
                     "terminating connection", "connection is lost", "connection is closed", "connection reset",
                     "no connection to the server", "could not receive data", "could not send data",
                     "consuming input failed")  # fmt: skip
T = TypeVar("T")


def lost(exc: BaseException) -> bool:
    """Whether a database error means the server went away (or is not back yet), not that the statement failed."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or getattr(exc.orig, "sqlstate", None) in LOST_SQLSTATES:
        return True
    text = str(exc.orig).lower()
    return type(exc.orig).__module__.startswith("psycopg") and any(sign in text for sign in LOST_SIGNS)


class Patience:
    """A bounded wait for a database server that went away: ``wait`` sleeps (backing off) until ``seconds`` have
    passed since the first failure, then raises ConfigError naming the ledger (``where``: never a password)."""

    def __init__(self, where: str, describe: Callable[[BaseException], str] = reason,
                 seconds: float | None = None) -> None:  # fmt: skip
        self.where, self.describe = where, describe
        self.seconds = RECONNECT_FOR if seconds is None else seconds
        self.deadline: float | None = None
        self.delay = 0.05

    def wait(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.seconds
            log.warning("the ledger %s lost its database (%s); retrying for up to %g s", self.where,
                        self.describe(exc), self.seconds)  # fmt: skip
        if now >= self.deadline:
            raise ConfigError(f"the ledger {self.where} has been unreachable for {self.seconds:g} s: "
                              f"{self.describe(exc)}") from None  # fmt: skip
        time.sleep(min(self.delay, self.deadline - now))
        self.delay = min(self.delay * 2, 1.0)


def retrying(call: Callable[[], T], patience: Patience) -> T:
    """``call()`` (a read: it writes nothing, so running it again is safe), again while the server is away."""
    while True:
        try:
            return call()
        except DBAPIError as exc:
            if not lost(exc):
                raise
            patience.wait(exc)


def read(connect: Callable[[], Connection], statement: Any, patience: Patience) -> list[Any]:
    """The rows (mappings) a select returns, on a new connection, read again while the server is away."""

    def once() -> list[Any]:
        with connect() as connection:
            return list(connection.execute(statement).mappings())

    return retrying(once, patience)


@contextmanager
def reconnecting(connect: Callable[[], Connection], patience: Patience) -> Iterator[Connection]:
    """One write transaction (as ``writing``) that rides out a lost connection: see ``Replayed``."""
    transaction = Replayed(connect, patience)
    try:
        yield cast(Connection, transaction)
        transaction.commit()
    finally:
        transaction.close()


class Replayed:
    """A write transaction that survives its server's restart, exactly once.

    Each statement's result is kept. When the connection is lost mid-transaction, nothing of it was written
    (the server rolled it back): a new connection replays the statements and checks each gives the same result
    (an insert gets its first row id again), then the block goes on, unaware. Should anything read differ (another
    writer changed those rows meanwhile), ConfigError says so: nothing was written. A commit whose answer is lost
    is the one case in doubt: on PostgreSQL the transaction's id was read before the commit, and after reconnecting
    ``txid_status`` says whether it committed (then it is done, not written twice) or not (then it is replayed);
    a transaction that only read has nothing to commit, so its lost commit is no matter.
    """

    def __init__(self, connect: Callable[[], Connection], patience: Patience) -> None:
        self._connect, self._patience = connect, patience
        self._done: list[tuple[Callable[[Connection], Any], Any]] = []  # (replay, fingerprint)
        self._wrote = False  # an insert, update or delete ran: a commit has something to write
        self._connection = retrying(self._begin, patience)

    def _begin(self) -> Connection:
        connection = self._connect()
        try:
            connection.execution_options(**{WRITE: True})
            connection.begin()
        except BaseException:
            _discard(connection)
            raise
        return connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def execute(self, statement: Any, parameters: Any = None, **options: Any) -> Any:
        def replay(connection: Connection, pin: Any = None) -> Any:
            return connection.execute(_pinned(statement, pin), parameters, **options)

        while True:
            try:
                shown, fingerprint = _kept(replay(self._connection))
                break
            except DBAPIError as exc:
                if not lost(exc):
                    raise
                self._recover(exc)
        self._done.append((lambda connection: replay(connection, fingerprint), fingerprint))
        self._wrote = self._wrote or isinstance(statement, UpdateBase)
        return shown

    def _recover(self, exc: BaseException) -> None:
        """Wait for the server, then a new transaction with every statement so far replayed (same results)."""
        while True:
            self._patience.wait(exc)
            _discard(self._connection)
            try:
                self._connection = retrying(self._begin, self._patience)
                for replay, fingerprint in self._done:
                    if _kept(replay(self._connection))[1] != fingerprint:
                        raise ConfigError(f"the ledger {self._patience.where} changed while its connection was "
                                          "lost: the transaction was rolled back, nothing of it written")  # fmt: skip
                return
            except DBAPIError as again:
                if not lost(again):
                    raise
                exc = again

    def commit(self) -> None:
        while True:
            xid = self._xid()
            try:
                self._connection.commit()
                return
            except DBAPIError as exc:
                if not lost(exc):
                    raise
                if not self._wrote:
                    return  # it only read: the server's rollback is as good as a commit (what it read may change)
                if xid is not None and self._status(xid, exc) == "committed":
                    return  # the commit happened, only its answer was lost: done, not written twice
                self._recover(exc)

    def _xid(self) -> int | None:
        """The transaction's id on PostgreSQL (None on SQLite, whose file has no lost answers, or when it only read)."""
        if not self._wrote or self._connection.dialect.name != POSTGRESQL:
            return None
        while True:
            try:
                return int(self._connection.execute(select(func.txid_current())).scalar_one())
            except DBAPIError as exc:
                if not lost(exc):
                    raise
                self._recover(exc)

    def _status(self, xid: int, exc: BaseException) -> str | None:
        """``committed``, ``aborted`` (or None, long gone) once the server answers; waits while ``in progress``."""
        while True:
            self._patience.wait(exc)
            try:
                with self._connect() as connection:
                    status = connection.execute(select(func.txid_status(xid))).scalar()
            except DBAPIError as again:
                if not lost(again):
                    raise
                exc = again
                continue
            if status != "in progress":
                return None if status is None else str(status)

    def close(self) -> None:
        _discard(self._connection)


def _kept(result: Any) -> tuple[Any, Any]:
    """A result as the block gets it, and what a replay must match: its keys and rows (kept), or its row count."""
    if result.returns_rows:
        frozen = result.freeze()
        return frozen(), (tuple(frozen().keys()), tuple(tuple(row) for row in frozen.data))
    return result, result.rowcount


def _pinned(statement: Any, kept: Any) -> Any:
    """An insert replayed with the key it got the first time (sequences do not roll back), so results match."""
    if not isinstance(statement, Insert) or not isinstance(kept, tuple) or len(kept[1]) != 1:
        return statement
    keys, (row,) = kept
    pinned = {c.name: row[keys.index(c.name)] for c in statement.table.primary_key if c.name in keys}
    return statement.values(pinned) if pinned else statement


def _discard(connection: Connection) -> None:
    """Close a connection (rolling back what it began); one already lost says nothing."""
    with contextlib.suppress(DBAPIError):
        connection.close()
