"""Watching export jobs for hours: the ledger layer over the wait loop (progress, stalls, ETAs, verification)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.pacing import Pacing
from ims_nb.client.polling import AsyncLayer, Layer, PollPlan, follow, follow_async, wait_jobs, wait_jobs_async
from ims_nb.errors import ApiError, AuthError, ConfigError, TransportError
from ims_nb.exports.estate import watch_estate
from ims_nb.exports.flows import Flow, call, drive, drive_async
from ims_nb.exports.history import Progress, ProgressCallback, jobs_frame
from ims_nb.exports.identity import scoped, scoped_async
from ims_nb.exports.launch import reconcile_flow
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.watch_rows import MAX_OBJECT_RATIO, ClientT, WatchRows
from ims_nb.exports.watchers import Share
from ims_nb.frames import job_records_frame
from ims_nb.vocab import LIVE, STALL_AFTER, Scope, State

if TYPE_CHECKING:
    from ims_nb.client.protocol import AsyncClientLike, ClientLike

__all__ = ["MAX_OBJECT_RATIO", "Progress", "ProgressCallback", "watch", "watch_async"]
log = logging.getLogger("ims_nb")


def _targets(target: Ledger | Iterable[str]) -> tuple[Ledger | None, list[str]]:
    if isinstance(target, Ledger):
        return target, []
    ids = [target] if isinstance(target, str) else list(target)
    if not all(isinstance(i, str) and i for i in ids):
        raise ConfigError("watch takes a Ledger or job ids (non-empty strings)")
    return None, ids


def watch(
    target: Ledger | Iterable[str],
    *,
    client: ClientLike | Mapping[Scope, ClientLike],
    timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
    stall_after: float = STALL_AFTER,
    interval: float = 5.0,
    max_interval: float = 60.0,
    max_rate: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """Follow every live job to its end, recording each observation; returns ``jobs_frame`` (or the records).

    Live ledger rows are resumed after a restart; rows in doubt are reconciled, at the start and every
    ``max_interval`` seconds, and exports whose job id was lost are followed by their target object until it
    appears (or the service says they ended: see ``ims_nb.exports.launch.send_again``). A job whose progress has not
    moved for ``stall_after`` seconds is reported as stalled. On ``SUCCESS`` the target object is checked
    (``verified``, or ``missing``). Ctrl-C stops watching and says that the remote jobs go on. A watch of a
    ledger keeps nothing of a job once it is final (the ledger has it), so its memory stays flat for hours.

    Raises:
        WaitTimeoutError: ``timeout`` passed with jobs still running (they go on remotely; with a ledger, the
            error's ``records`` are those of the jobs still running).
    """
    ledger, job_ids = _targets(target)
    if isinstance(client, Mapping):  # an estate: each scope's rows at its own endpoint (ims_nb.exports.estate)
        return watch_estate(
            ledger,
            clients=client,
            timeout=timeout,
            on_progress=on_progress,
            stall_after=stall_after,
            interval=interval,
            max_interval=max_interval,
            max_rate=max_rate,
            clock=clock,
            sleep=sleep,
        )
    pacing = Pacing(interval, max_interval, stall_after)
    if ledger is None:
        records = wait_jobs(client, job_ids, timeout=timeout, on_progress=_id_reporter(on_progress), pacing=pacing,
                            max_rate=max_rate, clock=clock, sleep=sleep)  # fmt: skip
        return job_records_frame(records.values())
    ledger = scoped(ledger, client)  # only the rows of the account the client is connected as
    with Share(ledger, interval, stall_after) as share:  # one watcher per job (ims_nb.exports.watchers)
        layer = _Synced(ledger, client, on_progress, clock, check_every=max_interval, share=share)
        plan = PollPlan(layer.tick(clock()), clock(), pacing, timeout)
        try:
            follow(plan, layer, max_rate=max_rate, clock=clock, sleep=sleep)
        except KeyboardInterrupt:
            _stopped(ledger)
    return jobs_frame(ledger)


async def watch_async(
    target: Ledger | Iterable[str],
    *,
    client: AsyncClientLike,
    timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
    stall_after: float = STALL_AFTER,
    interval: float = 5.0,
    max_interval: float = 60.0,
    max_rate: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> pd.DataFrame:
    """``watch`` with an async client: the polls of all due jobs run at once over its one connection pool.

    The same arguments, ledger records and results as ``watch`` (whose decisions it shares); ``sleep`` is
    awaited. Cancelling the task (or Ctrl-C) stops watching, says that the remote jobs go on and returns the
    frame.

    Raises:
        WaitTimeoutError: ``timeout`` passed with jobs still running (they go on remotely).
    """
    ledger, job_ids = _targets(target)
    pacing = Pacing(interval, max_interval, stall_after)
    if ledger is None:
        records = await wait_jobs_async(client, job_ids, timeout=timeout, on_progress=_id_reporter(on_progress),
                                        pacing=pacing, max_rate=max_rate, clock=clock, sleep=sleep)  # fmt: skip
        return job_records_frame(records.values())
    ledger = await scoped_async(ledger, client)  # only the rows of the account the client is connected as
    with Share(ledger, interval, stall_after, on_loop=True) as share:  # its lease's heartbeat: a task, no thread
        layer = _Asynced(ledger, client, on_progress, clock, check_every=max_interval, share=share)
        plan = PollPlan(await layer.tick(clock()), clock(), pacing, timeout)
        try:
            await follow_async(plan, layer, max_rate=max_rate, clock=clock, sleep=sleep)
        except (KeyboardInterrupt, asyncio.CancelledError):
            _stopped(ledger)
    return jobs_frame(ledger)


def _stopped(ledger: Ledger) -> None:
    log.warning("stopped watching: %d export job(s) go on in the cloud; watch again to follow them",
                len(ledger.rows(LIVE)))  # fmt: skip


def _id_reporter(on_progress: ProgressCallback | None) -> Callable[[str, dict[str, Any]], None] | None:
    """``wait``'s callback for a watch over job ids: their records as ``Progress``."""
    return None if on_progress is None else lambda job_id, record: on_progress(Progress.of_job(job_id, record))


class _LedgerWatch(WatchRows[ClientT]):
    """The ledger layer of a watch: which rows to poll, and what each observation changes in the ledger.

    ``settle`` and ``poll_flow`` are I/O-free flows (``exports.flows``); ``_Synced`` and ``_Asynced`` drive them
    with ``client`` as layers over the wait loop (``client.polling``: due times, pacing, deadline, stalls). With a
    ``share``, only the jobs this watch holds are polled; the others are followed in the ledger (``_look``). What
    each observation changes in the ledger is its bookkeeping's (``exports.watch_rows``).
    """

    def __init__(self, ledger: Ledger, client: ClientT, on_progress: ProgressCallback | None,
                 clock: Callable[[], float], *, check_every: float, share: Share | None = None) -> None:  # fmt: skip
        super().__init__(ledger, client, on_progress)
        self.clock, self.check_every, self.share = clock, check_every, share
        self.polled: set[str] = set()  # the jobs in the poll plan: with a share, those it holds
        self.next_check = float("-inf")

    def pending(self) -> bool:
        """Jobs another watcher polls, or live rows without a job id that this watch settles: lost answers,
        launches cut off, lost job ids."""
        if self._others():
            return True
        rows = [r for r in self.ledger.rows(LIVE) if not r["job_id"]]
        alive = self.ledger.holders_alive(r["owner"] for r in rows if r["state"] == State.SUBMITTING)
        return any(r["state"] != State.SUBMITTING or r["owner"] not in alive for r in rows)

    def wake(self) -> float:
        if self.share is not None and self._others():
            return min(self.next_check, self.share.next_look)
        return self.next_check

    def settle(self, now: float) -> Flow[list[str]]:
        """Reconcile and look for new jobs (``_check``); with a share, take orphaned jobs and follow the others.

        Returns the job ids to poll from now on.
        """
        found = (yield from self._check(now)) if now >= self.next_check else []
        if self.share is None:
            self.polled.update(found)
            return found
        return self._look(now) if found or self.share.due(now) else []

    def _check(self, now: float) -> Flow[list[str]]:
        """Every ``check_every`` seconds: reconcile doubtful rows, look for the objects of lost job ids.

        Returns the job ids that became known since the last look.
        """
        self.next_check = now + self.check_every
        just_settled = set((yield from reconcile_flow(self.ledger))["row_id"])
        for row in self.ledger.rows({State.RUNNING}):
            if not row["job_id"] and row["row_id"] not in just_settled:
                yield from self._follow_lost(row)
        new = {r["job_id"]: r for r in self.ledger.rows(LIVE) if r["job_id"] and r["job_id"] not in self.by_job}
        self.by_job.update(new)
        return list(new)

    def _others(self) -> bool:
        """Whether jobs that another watcher polls are followed here."""
        return any(job_id not in self.polled for job_id in self.by_job)

    def _look(self, now: float) -> list[str]:
        """Take the orphaned jobs, report the others' rows; returns the jobs newly held (to poll from now on)."""
        assert self.share is not None
        others = {r["job_id"]: r for r in self.share.refresh(now, [r["row_id"] for r in self.by_job.values()])}
        new = []
        for job_id, row in list(self.by_job.items()):
            if row["row_id"] in self.share.held:
                new += [] if job_id in self.polled else [job_id]
            elif job_id in others:
                self._followed(others[job_id], now)
            else:  # no longer this account's row (disowned)
                self._ended(job_id, row["row_id"])
        self.polled.update(new)
        return new

    def _followed(self, row: dict[str, Any], now: float) -> None:
        """Another watcher's job as the ledger has it: reported when it moved or stands still; forgotten at its end."""
        assert self.share is not None
        moved, stalled, ended = self.share.follow(row, now)
        self.first_seen.setdefault(row["job_id"], (now, float(row["process_percent"] or 0.0)))
        if moved or stalled:
            self._report(row, now, stalled=stalled)
        if ended:
            self._ended(row["job_id"], row["row_id"])

    def _ended(self, job_id: str, row_id: int) -> None:
        assert self.share is not None
        self.share.forget(row_id)
        self._forget_job(job_id)

    def poll_flow(self, plan: PollPlan, job_id: str) -> Flow[None]:
        row = self.by_job.get(job_id)
        if row is None or (self.share is not None and row["row_id"] not in self.share.held):  # taken over, or over
            plan.observe(job_id, {"status": "FAIL"}, self.clock())  # out of the plan, followed in the ledger
            self._drop(plan, job_id)
            return
        try:
            record = yield from call("job_progress", job_id)
        except AuthError:
            raise  # the credentials, not the job: nothing to record
        except (TransportError, ApiError) as exc:
            if isinstance(exc, TransportError) or exc.status >= 500 or exc.status == 429:
                log.info("poll of job %s failed (%s); trying again later", job_id, exc)
                plan.postpone(job_id, self.clock())
                return
            self._refused(row, exc)
            plan.observe(job_id, {"status": "FAIL"}, self.clock())  # no more polls here (a disowned row's state stays)
            self._forget(plan, job_id)
            return
        now = self.clock()
        final = plan.observe(job_id, record, now)
        yield from self._record(row, record, now, stalled=plan.stalled(job_id, now))
        if final:
            self._forget(plan, job_id)

    def _forget(self, plan: PollPlan, job_id: str) -> None:
        """A final job's state leaves memory (the ledger has it), so that a watch of many hours stays flat."""
        self._forget_job(job_id)
        self._drop(plan, job_id)

    def _drop(self, plan: PollPlan, job_id: str) -> None:
        self.polled.discard(job_id)
        plan.forget(job_id)


class _Synced(_LedgerWatch["ClientLike"], Layer):
    """The ledger watch over the wait loop, its flows driven with a synchronous client."""

    def tick(self, now: float) -> list[str]:
        return drive(self.settle(now), self.client)

    def poll(self, plan: PollPlan, job_id: str) -> None:
        drive(self.poll_flow(plan, job_id), self.client)


class _Asynced(_LedgerWatch["AsyncClientLike"], AsyncLayer):
    """The ledger watch over the wait loop, its flows driven with an asynchronous client."""

    async def tick(self, now: float) -> list[str]:
        return await drive_async(self.settle(now), self.client)

    async def poll(self, plan: PollPlan, job_id: str) -> None:
        await drive_async(self.poll_flow(plan, job_id), self.client)
