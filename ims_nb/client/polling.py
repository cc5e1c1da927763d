"""One wait loop for many jobs: the poll plan (due times, pacing, deadline, stalls) and its sync and async drivers."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ims_nb.client.pacing import SERVICE, Pacing
from ims_nb.client.retry import RateLimiter
from ims_nb.errors import ConfigError, WaitTimeoutError
from ims_nb.vocab import TERMINAL_STATUSES

ProgressCallback = Callable[[str, dict[str, Any]], None]


@dataclass
class _JobSchedule:
    interval: float
    due: float
    percent: float | None = None
    status: str | None = None
    seen_at: float | None = None  # when ``status`` or ``percent`` was last seen to change


@dataclass
class PollPlan:
    """Which job to poll next and when, and which stand still; the drivers (sync and async) only sleep and send.

    Args:
        job_ids: the jobs to follow (duplicates are followed once).
        now: the current time of the caller's clock.
        pacing: the cadence: ``interval`` is the first and shortest gap between two polls of one job,
            ``max_interval`` the longest (a job whose progress does not move backs off towards it), and a job
            that has not moved for ``stall_after`` seconds is stalled.
        timeout: seconds from ``now`` after which the wait gives up (None: no deadline).
    """

    job_ids: Iterable[str]
    now: float
    pacing: Pacing = SERVICE
    timeout: float | None = None
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    _live: dict[str, _JobSchedule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pacing.check()
        if self.timeout is not None and self.timeout < 0:
            raise ConfigError(f"timeout must not be negative, not {self.timeout}")
        self.deadline = None if self.timeout is None else self.now + self.timeout
        self.add(self.job_ids, self.now)

    @property
    def done(self) -> bool:
        return not self._live

    @property
    def live(self) -> list[str]:
        return list(self._live)

    def add(self, job_ids: Iterable[str], now: float) -> None:
        """Follow more jobs, due at once (a doubtful row settled, a lost export sent again, another launcher)."""
        for job_id in job_ids:
            if not isinstance(job_id, str) or not job_id:
                raise ConfigError(f"job ids must be non-empty strings, not {job_id!r}")
            self._live.setdefault(job_id, _JobSchedule(self.pacing.interval, now))

    def due(self, now: float) -> list[str]:
        """Jobs whose next poll is due, earliest first."""
        return sorted((j for j, s in self._live.items() if s.due <= now), key=lambda j: self._live[j].due)

    def next_due(self) -> float:
        return min(s.due for s in self._live.values())

    def gap(self, now: float, wake: float = math.inf) -> float:
        """How long to sleep: until the next poll is due (or ``wake``, if sooner), never past the deadline."""
        gap = max(0.0, min(self.next_due() if self._live else math.inf, wake) - now)
        return gap if self.deadline is None else max(0.0, min(gap, self.deadline - now))

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    def check(self, now: float) -> None:
        """Raise ``WaitTimeoutError`` once the deadline has passed, with the last records and the live jobs."""
        if self.expired(now):
            raise WaitTimeoutError(self.timeout or 0.0, self.records, self.live)

    def stalled(self, job_id: str, now: float) -> bool:
        """True when a live job's status and progress have not moved for ``stall_after`` seconds."""
        schedule = self._live.get(job_id)
        if schedule is None or schedule.seen_at is None:
            return False
        return now - schedule.seen_at >= self.pacing.stall_after

    def observe(self, job_id: str, record: dict[str, Any], now: float) -> bool:
        """Record a poll's answer; True when the job reached a terminal state."""
        schedule, pacing = self._live[job_id], self.pacing
        self.records[job_id] = record
        status = record.get("status")
        percent = (record.get("entities") or {}).get("process_percent")
        moved = status != schedule.status or percent != schedule.percent
        pace = self._pace(schedule, percent, now) if moved else None
        if moved:
            schedule.seen_at = now
        schedule.status, schedule.percent = status, percent
        if status in TERMINAL_STATUSES:
            del self._live[job_id]
            return True
        if not moved:  # standing still: back off
            schedule.interval = min(pacing.max_interval, schedule.interval * 1.5)
        elif pace is not None:  # moving: look again after a quarter of the time it still needs
            schedule.interval = min(pacing.max_interval, max(pacing.interval, pace / 4))
        else:
            schedule.interval = pacing.interval
        schedule.due = now + schedule.interval
        return False

    @staticmethod
    def _pace(schedule: _JobSchedule, percent: Any, now: float) -> float | None:
        """Seconds the job still needs at the pace seen since the last change, when that can be told."""
        before, since = schedule.percent, schedule.seen_at
        if not isinstance(percent, int | float) or not isinstance(before, int | float) or since is None:
            return None
        if percent <= before or now <= since:
            return None
        return (100.0 - percent) * (now - since) / (percent - before)

    def forget(self, job_id: str) -> None:
        """Drop a finished job's last record (a ledger watch keeps it in the ledger instead)."""
        if job_id not in self._live:
            self.records.pop(job_id, None)

    def postpone(self, job_id: str, now: float) -> None:
        """A poll failed transiently: try that job again after its current interval."""
        schedule = self._live[job_id]
        schedule.interval = min(self.pacing.max_interval, schedule.interval * 1.5)
        schedule.due = now + schedule.interval


class _Turns:
    """What a wait is about, over the loop; ``Layer`` and ``AsyncLayer`` add how it polls a job.

    At every turn the drivers ask ``tick`` for new job ids to follow, then ``poll`` each due job (which reports
    the answer to ``plan.observe``); they go on while jobs are live or ``pending`` says there is other work, and
    sleep until the next poll is due or ``wake`` (when the layer next needs a turn), whichever is sooner.
    """

    def pending(self) -> bool:
        return False

    def wake(self) -> float:
        return math.inf


class Layer(_Turns):
    """A layer with synchronous I/O, for ``follow``."""

    def tick(self, now: float) -> Iterable[str]:
        return ()

    def poll(self, plan: PollPlan, job_id: str) -> None:
        raise NotImplementedError


class AsyncLayer(_Turns):
    """A layer whose ``tick`` and ``poll`` are awaited, for ``follow_async``."""

    async def tick(self, now: float) -> Iterable[str]:
        return ()

    async def poll(self, plan: PollPlan, job_id: str) -> None:
        raise NotImplementedError


def follow(
    plan: PollPlan, layer: Layer, *, max_rate: float, clock: Callable[[], float], sleep: Callable[[float], Any]
) -> None:
    """Run the plan to its end with a synchronous layer: all polls together under ``max_rate`` per second.

    Raises:
        WaitTimeoutError: the plan's deadline passed with jobs still live.
    """
    limiter = RateLimiter(max_rate, clock=clock)
    while not plan.done or layer.pending():
        now = clock()
        plan.check(now)
        plan.add(layer.tick(now), now)
        due = plan.due(now)
        if not due:
            sleep(plan.gap(now, layer.wake()))
            continue
        for job_id in due:
            sleep(limiter.reserve())
            layer.poll(plan, job_id)


async def follow_async(
    plan: PollPlan,
    layer: AsyncLayer,
    *,
    max_rate: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[Any]],
) -> None:
    """``follow`` with an awaited layer: the polls of all due jobs run at once, under the same rate cap."""
    limiter = RateLimiter(max_rate, clock=clock)

    async def poll(job_id: str) -> None:
        await sleep(limiter.reserve())
        await layer.poll(plan, job_id)

    while not plan.done or layer.pending():
        now = clock()
        plan.check(now)
        plan.add(await layer.tick(now), now)
        due = plan.due(now)
        if not due:
            await sleep(plan.gap(now, layer.wake()))
            continue
        await _gather([poll(job_id) for job_id in due])


async def _gather(polls: list[Coroutine[Any, Any, None]]) -> None:
    """Run the polls at once; when one fails (refused credentials), the others are cancelled before it is raised."""
    tasks = [asyncio.ensure_future(p) for p in polls]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _Client(Protocol):
    def job_progress(self, job_id: str) -> Any: ...


def wait_jobs(
    client: _Client,
    job_ids: Iterable[str],
    *,
    timeout: float | None,
    on_progress: ProgressCallback | None,
    pacing: Pacing,
    max_rate: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Any],
) -> dict[str, dict[str, Any]]:
    """``ImsClient.wait``: follow job ids to their end; the last record of each, in the order of ``job_ids``."""
    ids = list(job_ids)
    plan = PollPlan(ids, clock(), pacing, timeout)
    follow(plan, _Jobs(client, on_progress, clock), max_rate=max_rate, clock=clock, sleep=sleep)
    return _in_order(ids, plan.records)


async def wait_jobs_async(
    client: _Client,
    job_ids: Iterable[str],
    *,
    timeout: float | None,
    on_progress: ProgressCallback | None,
    pacing: Pacing,
    max_rate: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[Any]],
) -> dict[str, dict[str, Any]]:
    """``AsyncImsClient.wait``: ``wait_jobs`` with the polls of all due jobs at once."""
    ids = list(job_ids)
    plan = PollPlan(ids, clock(), pacing, timeout)
    await follow_async(plan, _AsyncJobs(client, on_progress, clock), max_rate=max_rate, clock=clock, sleep=sleep)
    return _in_order(ids, plan.records)


def _in_order(job_ids: list[str], records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The records in the caller's order, not the order the answers came in (concurrent polls race)."""
    return {job_id: records[job_id] for job_id in dict.fromkeys(job_ids) if job_id in records}


class _Reports:
    """``client.wait``'s layer: each poll is ``client.job_progress``, handed to ``on_progress``."""

    def __init__(self, client: _Client, on_progress: ProgressCallback | None, clock: Callable[[], float]) -> None:
        self.client, self.on_progress, self.clock = client, on_progress, clock

    def observed(self, plan: PollPlan, job_id: str, record: dict[str, Any]) -> None:
        plan.observe(job_id, record, self.clock())
        if self.on_progress is not None:
            self.on_progress(job_id, record)


class _Jobs(_Reports, Layer):
    def poll(self, plan: PollPlan, job_id: str) -> None:
        self.observed(plan, job_id, self.client.job_progress(job_id))


class _AsyncJobs(_Reports, AsyncLayer):
    async def poll(self, plan: PollPlan, job_id: str) -> None:
        self.observed(plan, job_id, await self.client.job_progress(job_id))
