"""One watcher per job: a watch polls IMS for the rows it holds and reads the others' progress from the ledger."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, or_, select, update

from ims_nb.exports.leases import Kind, Lease, may_run
from ims_nb.exports.tables import exports, leases
from ims_nb.vocab import LIVE, State

if TYPE_CHECKING:
    from ims_nb.exports.ledger import Ledger

log = logging.getLogger("ims_nb")
#: The shortest lease a watcher holds, in seconds (its heartbeat writes every third of it).
MIN_LEASE_SECONDS = 0.5


def lease_ttl(interval: float) -> float:
    """A watcher's lease for a watch that polls every ``interval`` seconds at the shortest: half of it.

    The watch also looks at the ledger (takes orphaned jobs) every ``lease_ttl`` seconds, so a dead watcher's jobs
    are taken at most ``ttl`` (its lease runs out) + ``ttl`` (the next look) = ``interval`` after its last
    heartbeat: within one poll interval (for intervals of ``2 * MIN_LEASE_SECONDS`` and more). A watcher of this
    host whose process is gone is dead at once: its jobs are taken at the next look, within ``ttl``.
    """
    return max(interval / 2, MIN_LEASE_SECONDS)


def take(ledger: Ledger, holder: str, row_ids: Iterable[int]) -> set[int]:
    """Hold the rows among ``row_ids`` that no live watcher holds; returns the ones ``holder`` holds now.

    One UPDATE sets ``watcher = holder`` on the live rows whose watcher is NULL, has no unexpired lease or is known
    dead (a holder of this host whose process is gone: ``leases.may_run``), and on the ``succeeded`` rows whose
    watcher died before it checked their object; then one SELECT reads which of the rows are ``holder``'s (all in
    one write transaction: a second watcher waits, then sees them held).
    """
    ids = sorted(set(row_ids))
    if not ids:
        return set()
    alive = exists().where(leases.c.holder == exports.c.watcher, leases.c.expires_at > time.time())
    unverified = (exports.c.state == State.SUCCEEDED.value) & exports.c.note.is_(None) & exports.c.watcher.is_not(None)
    live = or_(exports.c.state.in_(sorted(s.value for s in LIVE)), unverified)
    with ledger.transaction() as db:
        others = select(exports.c.watcher).distinct().where(exports.c.row_id.in_(ids), exports.c.watcher != holder)
        dead = sorted(watcher for watcher in db.execute(others).scalars() if not may_run(watcher))
        gone = ~alive if not dead else or_(~alive, exports.c.watcher.in_(dead))
        orphaned = or_(exports.c.watcher.is_(None), (exports.c.watcher != holder) & gone)
        db.execute(update(exports).where(exports.c.row_id.in_(ids), live, orphaned).values(watcher=holder))
        held = db.execute(select(exports.c.row_id).where(exports.c.row_id.in_(ids), exports.c.watcher == holder))
        return set(held.scalars())


def release(ledger: Ledger, holder: str, row_ids: Iterable[int] | None = None) -> int:
    """Let go of ``holder``'s rows (those among ``row_ids``, or all): ``watcher = NULL``; returns how many."""
    query = update(exports).where(exports.c.watcher == holder)
    if row_ids is not None:
        query = query.where(exports.c.row_id.in_(sorted(set(row_ids))))
    with ledger.transaction() as db:
        return int(db.execute(query.values(watcher=None)).rowcount)


def ended(row: dict[str, Any]) -> bool:
    """Whether a job that another watcher polls has ended, as its ledger row says.

    A ``SUCCESS`` whose object its watcher has not judged yet (``succeeded``, no note, a watcher) has not: the row
    becomes ``verified`` or ``missing`` at once, and that is the state to end on (a watcher that dies meanwhile
    leaves it to ``take``; one that finishes lets go of it, unverified, as a watch alone does when it cannot check).
    """
    if row["state"] == State.SUCCEEDED and not row["note"] and row["watcher"] is not None:
        return False
    return row["state"] not in LIVE


class LoopLease(Lease):
    """A lease whose heartbeat is a task on the running asyncio loop, not a thread: an async watch (the monitor
    widget's) starts no thread."""

    _task: asyncio.Task[None] | None = None

    def start(self) -> LoopLease:
        with self.ledger.transaction() as db:
            self._insert(db, time.time())
        self._task = asyncio.get_running_loop().create_task(self._heartbeat_on_loop())
        return self

    async def _heartbeat_on_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                self.renew()
            except Exception as exc:  # the database briefly down: the next beat tries again
                log.warning("lease %s: heartbeat failed (%s)", self.holder, type(exc).__name__)

    def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        super().release()


@dataclass
class _Seen:
    status: Any
    percent: Any
    state: Any
    moved_at: float


@dataclass
class Share:
    """A watch's share of a batch: its lease, the jobs it holds, and the others' progress as the ledger has it.

    Every ``every`` seconds (``lease_ttl`` of the poll interval) ``refresh`` takes the orphaned jobs (one
    ``take``) and reads the batch's rows: the watch polls the jobs it holds and follows the others' rows
    (``follow``: stalled when a row's status and progress have not moved for ``stall_after`` seconds of the
    watch's clock). ``close`` releases the rows and the lease.
    """

    ledger: Ledger
    interval: float
    stall_after: float
    on_loop: bool = False  # an async watch: the lease's heartbeat runs on the event loop (``LoopLease``)
    user: str | None = None
    held: set[int] = field(default_factory=set)
    next_look: float = float("-inf")
    _seen: dict[int, _Seen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.every = lease_ttl(self.interval)
        who = self.ledger.identity.who if self.ledger.identity is not None else None  # a bound ledger knows who
        kind = LoopLease if self.on_loop else Lease
        self.lease = kind(self.ledger, Kind.WATCHER, ttl=self.every, user=self.user or who)

    @property
    def holder(self) -> str:
        return self.lease.holder

    def __enter__(self) -> Share:
        self.lease.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """A finished watch lets go of its jobs (another watch may take them at once) and of its lease."""
        try:
            release(self.ledger, self.holder)
        finally:
            self.lease.release()

    def due(self, now: float) -> bool:
        return now >= self.next_look

    def refresh(self, now: float, row_ids: Iterable[int]) -> list[dict[str, Any]]:
        """Take what is orphaned among ``row_ids``; returns the rows of the others, as the ledger has them now.

        A row that left the live rows is read alone (it ended, or is being verified); one that left the ledger's
        account scope (disowned) is no longer followed.
        """
        ids = set(row_ids)
        self.next_look = now + self.every
        self.held = take(self.ledger, self.holder, ids)
        live = {r["row_id"]: r for r in self.ledger.rows(LIVE)}
        others = [live.get(row_id) or self.ledger.row(row_id) for row_id in sorted(ids - self.held)]
        return [row for row in others if row["row_id"] in live or row["state"] not in LIVE]

    def follow(self, row: dict[str, Any], now: float) -> tuple[bool, bool, bool]:
        """Whether another watcher's row moved since the last look (or is new here), whether it is stalled, and
        whether it ended (``ended``: then it is forgotten here)."""
        seen = self._seen.get(row["row_id"])
        moved = seen is None or (seen.status, seen.percent, seen.state) != (row["status"], row["process_percent"],
                                                                            row["state"])  # fmt: skip
        if moved:
            seen = self._seen[row["row_id"]] = _Seen(row["status"], row["process_percent"], row["state"], now)
        assert seen is not None
        stalled = now - seen.moved_at >= self.stall_after
        if ended(row):
            self.forget(row["row_id"])
            return moved, False, True
        return moved, stalled, False

    def forget(self, row_id: int) -> None:
        self._seen.pop(row_id, None)
