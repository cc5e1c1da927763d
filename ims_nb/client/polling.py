"""Scheduling the polls of many jobs: per-job backoff while nothing moves, terminal states, a deadline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ims_nb.errors import ConfigError
from ims_nb.vocab import TERMINAL_STATUSES

ProgressCallback = Callable[[str, dict[str, Any]], None]


@dataclass
class _JobSchedule:
    interval: float
    due: float
    percent: float | None = None
    status: str | None = None
    seen_at: float | None = None  # when ``percent`` was last seen to change


@dataclass
class PollPlan:
    """Which job to poll next and when; the drivers (sync and async) only sleep and send.

    Args:
        job_ids: the jobs to follow (duplicates are followed once).
        now: the current time of the caller's clock.
        interval: the first and shortest gap between two polls of one job.
        max_interval: the longest gap; a job whose progress does not move backs off towards it.
        timeout: seconds from ``now`` after which the wait gives up (None: no deadline).
    """

    job_ids: Iterable[str]
    now: float
    interval: float = 5.0
    max_interval: float = 60.0
    timeout: float | None = None
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    _live: dict[str, _JobSchedule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 < self.interval <= self.max_interval:
            raise ConfigError(f"need 0 < interval <= max_interval, not {self.interval} and {self.max_interval}")
        if self.timeout is not None and self.timeout < 0:
            raise ConfigError(f"timeout must not be negative, not {self.timeout}")
        for job_id in self.job_ids:
            if not isinstance(job_id, str) or not job_id:
                raise ConfigError(f"job ids must be non-empty strings, not {job_id!r}")
            self._live.setdefault(job_id, _JobSchedule(self.interval, self.now))
        self.deadline = None if self.timeout is None else self.now + self.timeout

    @property
    def done(self) -> bool:
        return not self._live

    @property
    def live(self) -> list[str]:
        return list(self._live)

    def due(self, now: float) -> list[str]:
        """Jobs whose next poll is due, earliest first."""
        return sorted((j for j, s in self._live.items() if s.due <= now), key=lambda j: self._live[j].due)

    def next_due(self) -> float:
        return min(s.due for s in self._live.values())

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    def observe(self, job_id: str, record: dict[str, Any], now: float) -> bool:
        """Record a poll's answer; True when the job reached a terminal state."""
        schedule = self._live[job_id]
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
            schedule.interval = min(self.max_interval, schedule.interval * 1.5)
        elif pace is not None:  # moving: look again after a quarter of the time it still needs
            schedule.interval = min(self.max_interval, max(self.interval, pace / 4))
        else:
            schedule.interval = self.interval
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
        schedule.interval = min(self.max_interval, schedule.interval * 1.5)
        schedule.due = now + schedule.interval
