"""Watching export jobs for hours: progress into the ledger, stalls, ETAs, verification, and the history frame."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.polling import PollPlan
from ims_nb.client.retry import RateLimiter
from ims_nb.errors import ApiError, AuthError, ConfigError, TransportError, WaitTimeoutError
from ims_nb.exports.flows import Flow, call, drive, drive_async
from ims_nb.exports.identity import belongs_to, scoped, scoped_async
from ims_nb.exports.ledger import Ledger, owner_alive
from ims_nb.vocab import DONE, FAST_EXPORT_FORMAT, LIVE, STALL_AFTER, GiB, State, written_format

if TYPE_CHECKING:
    from ims_nb.client import AsyncImsClient

log = logging.getLogger("ims_nb")
#: Size bands (GiB) within which past job durations predict new ones.
SIZE_BANDS = (0, 16, 64, 128, 512, float("inf"))
#: A successful export's file is plausible when it is this share of the image size at most.
MAX_OBJECT_RATIO = 1.2
TIME_DTYPE = "datetime64[ns, UTC]"
HISTORY_COLUMNS = ("row_id", "job_id", "image_id", "image_name", "bucket_url", "format", "quick", "size_gb", "state",
                   "status", "process_percent", "begin_time", "end_time", "duration_s", "throughput_gb_h",
                   "error_code", "fail_reason", "object_size", "note", "belongs_to")  # fmt: skip


@dataclass(frozen=True)
class Progress:
    """What ``watch`` reports for one job each time it looks: for progress bars and logs."""

    row_id: int
    job_id: str | None
    image_name: str | None
    state: str
    percent: float | None
    eta_seconds: float | None
    stalled: bool
    status: str | None = None  # the service's word: INIT, RUNNING, SUCCESS, FAIL


ProgressCallback = Callable[[Progress], None]


def jobs_frame(ledger: Ledger) -> pd.DataFrame:
    """One row per export in the ledger with its duration (service times), throughput (GB/h) and outcome."""
    rows = ledger.rows(every_account=True)
    frame = pd.DataFrame(rows, columns=[c for c in _LEDGER_FIELDS])
    whose = pd.Series([belongs_to(row, ledger.identity) for row in rows], index=frame.index, dtype="string")
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=_HISTORY_DTYPES.get(c, "string")) for c in HISTORY_COLUMNS})
    times = {name: pd.to_datetime(frame[name], utc=True, errors="coerce", format="ISO8601").astype(TIME_DTYPE)
             for name in ("begin_time", "end_time")}  # fmt: skip
    begin, end = times["begin_time"], times["end_time"]
    duration = (end - begin).dt.total_seconds()
    size_gb = pd.to_numeric(frame["size_bytes"], errors="coerce") / GiB
    quick = frame["quick"].astype(bool)
    out = pd.DataFrame({
        "row_id": frame["row_id"].astype("Int64"), "job_id": frame["job_id"].astype("string"),
        "image_id": frame["image_id"].astype("string"), "image_name": frame["image_name"].astype("string"),
        "bucket_url": frame["bucket_url"].astype("string"),
        "format": frame["file_format"].where(~quick, FAST_EXPORT_FORMAT).astype("string"), "quick": quick,
        "size_gb": size_gb.astype(float), "state": frame["state"].astype("string"),
        "status": frame["status"].astype("string"),
        "process_percent": pd.to_numeric(frame["process_percent"], errors="coerce").astype(float),
        "begin_time": begin, "end_time": end, "duration_s": duration.astype(float),
        "throughput_gb_h": (size_gb / (duration / 3600)).where(duration > 0).astype(float),
        "error_code": frame["error_code"].astype("string"), "fail_reason": frame["fail_reason"].astype("string"),
        "object_size": pd.to_numeric(frame["object_size"], errors="coerce").astype("Int64"),
        "note": frame["note"].astype("string"), "belongs_to": whose,
    })  # fmt: skip
    return out[list(HISTORY_COLUMNS)]


_LEDGER_FIELDS = ("row_id", "image_id", "image_name", "bucket_url", "file_format", "quick", "size_bytes", "state",
                  "job_id", "status", "process_percent", "begin_time", "end_time", "error_code", "fail_reason",
                  "object_size", "note")  # fmt: skip
_HISTORY_DTYPES = {"row_id": "Int64", "quick": "bool", "size_gb": "float64", "process_percent": "float64",
                   "begin_time": TIME_DTYPE, "end_time": TIME_DTYPE, "duration_s": "float64",
                   "throughput_gb_h": "float64", "object_size": "Int64"}  # fmt: skip


def size_band(size_gb: float) -> int:
    """The index of the size band a job falls in."""
    return int(np.searchsorted(SIZE_BANDS, size_gb, side="right") - 1) if size_gb == size_gb else -1


class EtaModel:
    """Remaining time from the median throughput of finished jobs of the same format and size band.

    Without such history, a running job's own pace (elapsed time over progress) is used. A job that succeeds
    while the model is in use joins it with ``add`` (no rebuild from the whole ledger).
    """

    def __init__(self, history: pd.DataFrame) -> None:
        done = history[(history["state"].isin([State.SUCCEEDED.value, State.VERIFIED.value]))
                       & (history["duration_s"] > 0)]  # fmt: skip
        keys = zip(done["format"].fillna(""), [size_band(s) for s in done["size_gb"]], strict=True)
        self._samples: dict[tuple[str, int], list[float]] = {}
        for key, seconds, size in zip(keys, done["duration_s"], done["size_gb"], strict=True):
            self._samples.setdefault(key, []).append(size / seconds)
        self.rates = {key: float(np.median(values)) for key, values in self._samples.items()}

    def add(self, *, file_format: str, size_gb: float, duration_s: float) -> None:
        """One more successful job: the model becomes what it would be if built with it in the history."""
        if not duration_s > 0:
            return
        key = (file_format, size_band(size_gb))
        samples = self._samples.setdefault(key, [])
        samples.append(size_gb / duration_s)
        self.rates[key] = float(np.median(samples))

    def eta(
        self,
        *,
        file_format: str,
        size_gb: float,
        percent: float | None,
        elapsed: float | None,
        since_percent: float = 0.0,
    ) -> float | None:
        """Seconds left for a job, or None when nothing is known.

        Args:
            percent: the job's progress now.
            elapsed: seconds since the job was at ``since_percent`` (its own pace, when history is lacking).
        """
        left = 1.0 - (percent or 0.0) / 100.0
        rate = self.rates.get((file_format, size_band(size_gb)))
        if rate and size_gb == size_gb:
            return max(0.0, left * size_gb / rate)
        gained = (percent or 0.0) - since_percent
        if elapsed and elapsed > 0 and gained > 0:
            return max(0.0, elapsed * left * 100.0 / gained)
        return None


def _targets(target: Ledger | Iterable[str]) -> tuple[Ledger | None, list[str]]:
    if isinstance(target, Ledger):
        return target, []
    if isinstance(target, str):
        return None, [target]
    ids = list(target)
    if not all(isinstance(i, str) and i for i in ids):
        raise ConfigError("watch takes a Ledger or job ids (non-empty strings)")
    return None, ids


def watch(
    target: Ledger | Iterable[str],
    *,
    client: Any,
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
    appears (or the service says they ended: see ``ims_nb.exports.plan.send_again``). A job whose progress has not
    moved for ``stall_after`` seconds is reported as stalled. On ``SUCCESS`` the target object is checked
    (``verified``, or ``missing``). Ctrl-C stops watching and says that the remote jobs go on. A watch of a
    ledger keeps nothing of a job once it is final (the ledger has it), so its memory stays flat for hours.

    Raises:
        WaitTimeoutError: ``timeout`` passed with jobs still running (they go on remotely; with a ledger, the
            error's ``records`` are those of the jobs still running).
    """
    ledger, job_ids = _targets(target)
    if ledger is None:
        return _watch_ids(job_ids, client, timeout, on_progress, interval, max_interval, max_rate, clock, sleep)
    ledger = scoped(ledger, client)  # only the rows of the account the client is connected as
    watcher = _LedgerWatch(ledger, stall_after, on_progress, clock, check_every=max_interval)
    plan = PollPlan(drive(watcher.settle(clock()), client), clock(), interval, max_interval, timeout)
    limiter = RateLimiter(max_rate, clock=clock)
    try:
        while not plan.done or watcher.unsettled():
            now = clock()
            _check_deadline(plan, now, timeout)
            plan = _extended(plan, drive(watcher.settle(now), client), now)
            due, gap = _due(plan, watcher, now)
            if not due:
                sleep(gap)
                continue
            for job_id in due:
                sleep(limiter.reserve())
                drive(watcher.poll(plan, job_id), client)
    except KeyboardInterrupt:
        _stopped(ledger)
    return jobs_frame(ledger)


async def watch_async(
    target: Ledger | Iterable[str],
    *,
    client: AsyncImsClient,
    timeout: float | None = None,
    on_progress: ProgressCallback | None = None,
    stall_after: float = STALL_AFTER,
    interval: float = 5.0,
    max_interval: float = 60.0,
    max_rate: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> pd.DataFrame:
    """``watch`` with an ``AsyncImsClient``: the polls of all due jobs run at once over its one connection pool.

    The same arguments, ledger records and results as ``watch`` (whose decisions it shares); ``sleep`` is
    awaited. Cancelling the task (or Ctrl-C) stops watching, says that the remote jobs go on and returns the
    frame.

    Raises:
        WaitTimeoutError: ``timeout`` passed with jobs still running (they go on remotely).
    """
    ledger, job_ids = _targets(target)
    if ledger is None:
        return await _watch_ids_async(job_ids, client, timeout, on_progress, interval, max_interval, max_rate,
                                      clock, sleep)  # fmt: skip
    ledger = await scoped_async(ledger, client)  # only the rows of the account the client is connected as
    watcher = _LedgerWatch(ledger, stall_after, on_progress, clock, check_every=max_interval)
    plan = PollPlan(await drive_async(watcher.settle(clock()), client), clock(), interval, max_interval, timeout)
    limiter = RateLimiter(max_rate, clock=clock)

    async def poll(plan: PollPlan, job_id: str) -> None:
        await sleep(limiter.reserve())
        await drive_async(watcher.poll(plan, job_id), client)

    try:
        while not plan.done or watcher.unsettled():
            now = clock()
            _check_deadline(plan, now, timeout)
            plan = _extended(plan, await drive_async(watcher.settle(now), client), now)
            due, gap = _due(plan, watcher, now)
            if not due:
                await sleep(gap)
                continue
            await _gather([poll(plan, job_id) for job_id in due])
    except (KeyboardInterrupt, asyncio.CancelledError):
        _stopped(ledger)
    return jobs_frame(ledger)


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


def _check_deadline(plan: PollPlan, now: float, timeout: float | None) -> None:
    if plan.expired(now):
        raise WaitTimeoutError(timeout or 0.0, plan.records, plan.live)


def _due(plan: PollPlan, watcher: _LedgerWatch, now: float) -> tuple[list[str], float]:
    """The jobs to poll now, or (none and) how long to sleep before the next poll or check."""
    due = plan.due(now) if not plan.done else []
    gap = min(plan.next_due() if not plan.done else watcher.next_check, watcher.next_check) - now
    gap = max(gap, 0.0) if plan.deadline is None else max(0.0, min(gap, plan.deadline - now))
    return due, gap


def _stopped(ledger: Ledger) -> None:
    live = len(ledger.rows(LIVE))
    log.warning("stopped watching: %d export job(s) go on in the cloud; watch again to follow them", live)


def _extended(plan: PollPlan, job_ids: list[str], now: float) -> PollPlan:
    """The plan with more jobs to follow (a doubtful row settled, a lost export sent again, another launcher)."""
    if not job_ids:
        return plan
    remaining = None if plan.deadline is None else max(0.0, plan.deadline - now)
    bigger = PollPlan([*plan.live, *job_ids], now, plan.interval, plan.max_interval, remaining)
    bigger.records.update(plan.records)
    return bigger


def _watch_ids(
    job_ids: list[str],
    client: Any,
    timeout: float | None,
    on_progress: ProgressCallback | None,
    interval: float,
    max_interval: float,
    max_rate: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> pd.DataFrame:
    from ims_nb.frames import job_records_frame

    records = client.wait(job_ids, timeout=timeout, on_progress=_id_reporter(on_progress), interval=interval,
                          max_interval=max_interval, max_rate=max_rate, clock=clock, sleep=sleep)  # fmt: skip
    return job_records_frame(records.values())


async def _watch_ids_async(
    job_ids: list[str],
    client: AsyncImsClient,
    timeout: float | None,
    on_progress: ProgressCallback | None,
    interval: float,
    max_interval: float,
    max_rate: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[Any]],
) -> pd.DataFrame:
    from ims_nb.frames import job_records_frame

    records = await client.wait(job_ids, timeout=timeout, on_progress=_id_reporter(on_progress), interval=interval,
                                max_interval=max_interval, max_rate=max_rate, clock=clock, sleep=sleep)  # fmt: skip
    return job_records_frame(records.values())


def _id_reporter(on_progress: ProgressCallback | None) -> Callable[[str, dict[str, Any]], None]:
    """``wait``'s callback for a watch over job ids: their records as ``Progress``."""

    def report(job_id: str, record: dict[str, Any]) -> None:
        if on_progress is not None:
            entities = record.get("entities") or {}
            on_progress(Progress(0, job_id, entities.get("image_name"), str(record.get("status")),
                                 entities.get("process_percent"), None, False, str(record.get("status"))))  # fmt: skip

    return report


class _LedgerWatch:
    """The ledger side of a watch: which rows to poll, and what each observation changes.

    No I/O: ``settle`` and ``poll`` are flows (``exports.flows``) that yield the client calls they need; ``watch``
    drives them with a synchronous client and ``watch_async`` with an asynchronous one.
    """

    def __init__(
        self,
        ledger: Ledger,
        stall_after: float,
        on_progress: ProgressCallback | None,
        clock: Callable[[], float],
        *,
        check_every: float,
    ) -> None:
        self.ledger, self.stall_after, self.on_progress, self.clock = ledger, stall_after, on_progress, clock
        self.check_every = check_every
        self.eta_model: EtaModel | None = None  # built when first needed, then added to as jobs succeed
        self.in_model: set[int] = set()  # the rows the model was built from (done when it was built)
        self.by_job: dict[str, dict[str, Any]] = {}
        self.moved_at: dict[str, float] = {}
        self.first_seen: dict[str, tuple[float, float]] = {}  # job id -> (time, percent) of this watch's first look
        self.next_check = float("-inf")

    def unsettled(self) -> list[dict[str, Any]]:
        """Live rows without a job id that this watch settles: lost answers, launches cut off, lost job ids."""
        return [r for r in self.ledger.rows(LIVE)
                if not r["job_id"] and (r["state"] != State.SUBMITTING or not owner_alive(r["owner"]))]  # fmt: skip

    def settle(self, now: float) -> Flow[list[str]]:
        """Every ``check_every`` seconds: reconcile doubtful rows, look for the objects of lost job ids.

        Returns the job ids that became known since the last look (to be polled from now on).
        """
        from ims_nb.exports.plan import reconcile_flow

        if now < self.next_check:
            return []
        self.next_check = now + self.check_every
        just_settled = set((yield from reconcile_flow(self.ledger))["row_id"])
        for row in self.ledger.rows({State.RUNNING}):
            if not row["job_id"] and row["row_id"] not in just_settled:
                yield from self._follow_lost(row)
        new = {r["job_id"]: r for r in self.ledger.rows(LIVE) if r["job_id"] and r["job_id"] not in self.by_job}
        self.by_job.update(new)
        return list(new)

    def _follow_lost(self, row: dict[str, Any]) -> Flow[None]:
        """A job the service accepted but whose id was lost: its object, or the service's word, ends it."""
        from ims_nb.exports.plan import send_again_flow

        if not (yield from self._verify(row)):
            yield from send_again_flow(self.ledger, row)

    def poll(self, plan: PollPlan, job_id: str) -> Flow[None]:
        row = self.by_job[job_id]
        try:
            record = yield from call("job_progress", job_id)
        except AuthError:
            raise  # the credentials, not the job: nothing to record
        except (TransportError, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status < 500 and exc.status != 429 and row.get("adopted_at"):
                # a row claimed from before identities: this endpoint never proved it accepted the job
                self.ledger.disown(row["row_id"], f"{exc.code} from {self.ledger.identity}: not its job; "
                                                  "left for the endpoint that accepted it")  # fmt: skip
                plan.observe(job_id, {"status": "FAIL"}, self.clock())  # no more polls here; its state stays
                self._forget(plan, job_id)
                return
            if isinstance(exc, ApiError) and exc.status < 500 and exc.status != 429:
                self.ledger.update(row["row_id"], state=State.FAILED, error_code=exc.code, fail_reason=exc.message)
                plan.observe(job_id, {"status": "FAIL"}, self.clock())
                self._forget(plan, job_id)
                return
            log.info("poll of job %s failed (%s); trying again later", job_id, exc)
            plan.postpone(job_id, self.clock())
            return
        yield from self._record(row, record)
        if plan.observe(job_id, record, self.clock()):
            self._forget(plan, job_id)

    def _forget(self, plan: PollPlan, job_id: str) -> None:
        """A final job's state leaves memory (the ledger has it), so that a watch of many hours stays flat."""
        for known in (self.by_job, self.moved_at, self.first_seen):
            known.pop(job_id, None)
        plan.forget(job_id)

    def _record(self, row: dict[str, Any], record: dict[str, Any]) -> Flow[None]:
        status = str(record.get("status"))
        entities = record.get("entities") or {}
        percent = entities.get("process_percent")
        now = self.clock()
        job_id = row["job_id"]
        self.first_seen.setdefault(job_id, (now, float(percent or 0.0)))
        if percent != row.get("process_percent") or job_id not in self.moved_at:
            self.moved_at[job_id] = now
        fields: dict[str, Any] = {"status": status, "process_percent": percent, "begin_time": record.get("begin_time"),
                                  "end_time": record.get("end_time")}  # fmt: skip
        if status == "FAIL":
            fields.update(
                state=State.FAILED, error_code=record.get("error_code"), fail_reason=record.get("fail_reason")
            )
        elif status == "SUCCESS":
            fields.update(state=State.SUCCEEDED)
        else:
            fields.update(state=State.RUNNING)
        self.ledger.update(row["row_id"], **fields)
        self.by_job[job_id] = {**row, **fields}
        if status == "SUCCESS":
            yield from self._verify(self.ledger.row(row["row_id"]))
        final = self.ledger.row(row["row_id"])
        if status == "SUCCESS":
            self._learn(final)
        self._report(final, now)

    def _learn(self, row: dict[str, Any]) -> None:
        """A job that succeeded joins the ETA model's history (built once per watch, then kept up to date)."""
        if self.eta_model is None or row["state"] not in DONE or row["row_id"] in self.in_model:
            return  # no model yet (the first is built from the ledger), no file, or in the model already
        try:
            duration = (pd.Timestamp(row["end_time"]) - pd.Timestamp(row["begin_time"])).total_seconds()
        except (TypeError, ValueError):
            return
        self.eta_model.add(file_format=written_format(row["file_format"], bool(row["quick"])),
                           size_gb=math.nan if row["size_bytes"] is None else row["size_bytes"] / GiB,
                           duration_s=duration)  # fmt: skip

    def _verify(self, row: dict[str, Any]) -> Flow[bool]:
        """Check a finished export's object: ``verified``, or ``missing``; False when there is nothing to judge."""
        from ims_nb.exports.plan import note_for

        bucket, _, key = row["bucket_url"].partition(":")
        try:
            size = yield from call("object_size", bucket, key)
        except ConfigError as exc:  # no OBS credentials (a password login): the job's word stands, unverified
            if row["job_id"] and row["state"] == State.SUCCEEDED and not row["note"]:
                self.ledger.update(row["row_id"], note=note_for(row, f"not verified: {exc}"))
            return bool(row["job_id"])
        expected = row["size_bytes"] or 0
        if size is not None and 0 < size <= max(expected, 1) * MAX_OBJECT_RATIO:
            self.ledger.update(row["row_id"], state=State.VERIFIED, object_size=size, status="SUCCESS")
            return True
        if size is None and not row["job_id"]:
            return False  # a lost job id: the job may still run
        problem = "is missing" if size is None else f"has an implausible size ({size} bytes)"
        self.ledger.update(row["row_id"], state=State.MISSING, object_size=size,
                           note=note_for(row, f"the job reported SUCCESS but the object {key} {problem}"))  # fmt: skip
        log.warning("export of %s reported SUCCESS but %s %s", row["image_name"], key, problem)
        return True

    def _report(self, row: dict[str, Any], now: float) -> None:
        if self.on_progress is None:
            return
        job_id = row["job_id"]
        percent = row["process_percent"]
        stalled = row["state"] == State.RUNNING and now - self.moved_at.get(job_id, now) >= self.stall_after
        eta = None
        if row["state"] in (State.RUNNING, State.SUBMITTED):
            if self.eta_model is None:
                history = jobs_frame(self.ledger)
                self.eta_model = EtaModel(history)
                self.in_model = set(history.loc[history["state"].isin(list(DONE)), "row_id"].astype(int))
            seen_at, seen_percent = self.first_seen.get(job_id, (now, 0.0))
            eta = self.eta_model.eta(file_format=written_format(row["file_format"], bool(row["quick"])),
                                     size_gb=(row["size_bytes"] or 0) / GiB, percent=percent, elapsed=now - seen_at,
                                     since_percent=seen_percent)  # fmt: skip
        self.on_progress(Progress(row["row_id"], job_id, row["image_name"], row["state"], percent, eta, stalled,
                                  row["status"]))  # fmt: skip
