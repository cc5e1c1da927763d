"""The jobs history: one row per export (durations, throughput), the ETA model and how well it fits."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ConfigError
from ims_nb.exports.identity import belongs_to
from ims_nb.vocab import DONE, FAST_EXPORT_FORMAT, GiB, State, written_format

if TYPE_CHECKING:
    from ims_nb.exports.ledger import Ledger

__all__ = [
    "Progress",
    "ProgressCallback",
    "FIT_COLUMNS",
    "HISTORY_COLUMNS",
    "EtaModel",
    "duration_summary",
    "eta_fit",
    "eta_fit_summary",
    "jobs_of",
    "jobs_frame",
    "size_band",
]

#: Size bands (GiB) within which past job durations predict new ones.
SIZE_BANDS = (0, 16, 64, 128, 512, float("inf"))
TIME_DTYPE = "datetime64[ns, UTC]"
#: The columns of ``jobs_frame``, in order.
HISTORY_COLUMNS = ("row_id", "job_id", "image_id", "image_name", "bucket_url", "format", "quick", "size_gb", "state",
                   "status", "process_percent", "begin_time", "end_time", "duration_s", "throughput_gb_h",
                   "error_code", "fail_reason", "object_size", "note", "region", "project_id",
                   "belongs_to", "launched_by", "launched_user", "launched_host")  # fmt: skip
#: The columns of ``jobs_frame`` that say who launched a job where (``launched_by`` is the signer: ``AK <id>``).
WHO_COLUMNS = ("launched_by", "launched_user", "launched_host")

#: The columns of ``eta_fit``, in order, with their pandas dtypes.
FIT_COLUMNS = {"row_id": "Int64", "image_name": "string", "format": "string", "size_gb": "float64",
               "actual_s": "float64", "predicted_s": "float64", "error_pct": "float64"}  # fmt: skip
_NEEDED = ("row_id", "image_name", "format", "size_gb", "state", "duration_s")


def jobs_frame(ledger: Ledger, *, user: str | None = None, host: str | None = None) -> pd.DataFrame:
    """One row per export in the ledger with its duration (service times), throughput (GB/h) and outcome.

    Every account's rows, every user's and every host's (the history a team shares); ``launched_user`` (the
    IAM user, when known) and ``launched_host`` say who launched each where.

    Args:
        user: only the jobs this IAM user launched (``launched_user``).
        host: only the jobs launched on this host (``launched_host``).
    """
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
        "note": frame["note"].astype("string"), "region": frame["region"].astype("string"),
        "project_id": frame["project_id"].astype("string"), "belongs_to": whose,
        **{name: frame[name].astype("string") for name in WHO_COLUMNS},
    })  # fmt: skip
    return jobs_of(out[list(HISTORY_COLUMNS)], user=user, host=host)


_LEDGER_FIELDS = ("row_id", "image_id", "image_name", "bucket_url", "file_format", "quick", "size_bytes", "state",
                  "job_id", "status", "process_percent", "begin_time", "end_time", "error_code", "fail_reason",
                  "object_size", "note", "region", "project_id", *WHO_COLUMNS)  # fmt: skip
_HISTORY_DTYPES = {"row_id": "Int64", "quick": "bool", "size_gb": "float64", "process_percent": "float64",
                   "begin_time": TIME_DTYPE, "end_time": TIME_DTYPE, "duration_s": "float64",
                   "throughput_gb_h": "float64", "object_size": "Int64"}  # fmt: skip


def jobs_of(history: pd.DataFrame, *, user: str | None = None, host: str | None = None) -> pd.DataFrame:
    """The jobs of a ``jobs_frame`` that ``user`` launched on ``host`` (None: anyone, anywhere), renumbered."""
    keep = pd.Series(True, index=history.index)
    for column, wanted in (("launched_user", user), ("launched_host", host)):
        if wanted is not None:
            keep &= (history[column] == wanted).fillna(False).astype(bool)
    return history if user is None and host is None else history[keep].reset_index(drop=True)


def size_band(size_gb: float) -> int:
    """The index of the size band a job falls in."""
    return int(np.searchsorted(SIZE_BANDS, size_gb, side="right") - 1) if size_gb == size_gb else -1


class EtaModel:
    """Remaining time from the median throughput of finished jobs of the same format and size band.

    Without such history, a running job's own pace (elapsed time over progress) is used. A job that succeeds
    while the model is in use joins it with ``add`` or ``learn`` (no rebuild from the whole ledger). ETAs are in
    real seconds: the history's durations are in the service's clock, which runs ``speed`` times real time (a
    simulator's clock scale, ``client.pacing.clock_speed``); the own pace is measured on the watch's clock.
    """

    def __init__(self, history: pd.DataFrame, *, speed: float = 1.0) -> None:
        self.speed = speed
        done = history[(history["state"].isin([State.SUCCEEDED.value, State.VERIFIED.value]))
                       & (history["duration_s"] > 0)]  # fmt: skip
        keys = zip(done["format"].fillna(""), [size_band(s) for s in done["size_gb"]], strict=True)
        self._samples: dict[tuple[str, int], list[float]] = {}
        for key, seconds, size in zip(keys, done["duration_s"], done["size_gb"], strict=True):
            self._samples.setdefault(key, []).append(size / seconds)
        self.rates = {key: float(np.median(values)) for key, values in self._samples.items()}
        self._rows = set(done["row_id"].astype(int)) if "row_id" in done else set()  # the ledger rows it holds

    def add(self, *, file_format: str, size_gb: float, duration_s: float) -> None:
        """One more successful job: the model becomes what it would be if built with it in the history."""
        if not duration_s > 0:
            return
        key = (file_format, size_band(size_gb))
        samples = self._samples.setdefault(key, [])
        samples.append(size_gb / duration_s)
        self.rates[key] = float(np.median(samples))

    def learn(self, row: dict[str, Any]) -> None:
        """A ledger row whose export succeeded joins the model (once: a row of its history is in it already)."""
        if row["state"] not in DONE or row["row_id"] in self._rows:
            return
        try:
            duration = (pd.Timestamp(row["end_time"]) - pd.Timestamp(row["begin_time"])).total_seconds()
        except (TypeError, ValueError):
            return
        self._rows.add(row["row_id"])
        self.add(file_format=written_format(row["file_format"], bool(row["quick"])),
                 size_gb=math.nan if row["size_bytes"] is None else row["size_bytes"] / GiB,
                 duration_s=duration)  # fmt: skip

    def eta_of(self, row: dict[str, Any], now: float, first_seen: tuple[float, float]) -> float | None:
        """Seconds left for a ledger row's job, first seen by its watch at ``first_seen`` (time, percent)."""
        seen_at, seen_percent = first_seen
        return self.eta(file_format=written_format(row["file_format"], bool(row["quick"])),
                        size_gb=(row["size_bytes"] or 0) / GiB, percent=row["process_percent"],
                        elapsed=now - seen_at, since_percent=seen_percent)  # fmt: skip

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
            return max(0.0, left * size_gb / rate / self.speed)
        gained = (percent or 0.0) - since_percent
        if elapsed and elapsed > 0 and gained > 0:
            return max(0.0, elapsed * left * 100.0 / gained)
        return None


def eta_fit(history: pd.DataFrame) -> pd.DataFrame:
    """Each finished export's duration against what ``EtaModel`` predicts for it from all the other finished ones.

    Leave-one-out: a job's prediction is ``EtaModel(history without it).eta(file_format=..., size_gb=...,
    percent=0.0, elapsed=None)``, i.e. its size over the median throughput of the other finished jobs of its
    format and size band. Finished means state ``succeeded`` or ``verified`` with ``duration_s > 0``.

    Args:
        history: a ``jobs_frame(ledger)`` frame.

    Returns:
        One row per finished job, in the history's order, with the columns of ``FIT_COLUMNS``: ``actual_s`` is
        its duration, ``predicted_s`` NaN when no other job shares its format and size band, and ``error_pct``
        is ``100 * (predicted_s - actual_s) / actual_s``.

    Raises:
        ConfigError: the frame lacks columns of a jobs frame (named in the message).
    """
    missing = [c for c in _NEEDED if c not in history.columns]
    if missing:
        raise ConfigError(f"eta_fit needs a jobs frame; missing columns: {', '.join(missing)}")
    states = history["state"].astype("string")
    duration = pd.to_numeric(history["duration_s"], errors="coerce").astype(float)
    done = history[(states.isin([s.value for s in DONE]) & (duration > 0)).fillna(False).astype(bool)]
    size = pd.to_numeric(done["size_gb"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    actual = pd.to_numeric(done["duration_s"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    formats = done["format"].astype("string").fillna("")
    rate = np.full(len(done), np.nan)
    keys = pd.DataFrame({"format": formats.to_numpy(dtype=object), "band": [size_band(s) for s in size]})
    for positions in keys.groupby(["format", "band"], sort=False).indices.values():
        rate[positions] = _median_of_others(size[positions] / actual[positions])
    usable = (rate != 0) & ~np.isnan(rate) & ~np.isnan(size)  # as EtaModel: no rate, no size, no prediction
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = np.where(usable, np.maximum(0.0, size / rate), np.nan)
    data: dict[str, Any] = {
        "row_id": done["row_id"].to_numpy(), "image_name": done["image_name"].to_numpy(),
        "format": done["format"].to_numpy(), "size_gb": size, "actual_s": actual, "predicted_s": predicted,
        "error_pct": 100.0 * (predicted - actual) / actual,
    }  # fmt: skip
    return pd.DataFrame({c: pd.Series(data[c], dtype=dtype) for c, dtype in FIT_COLUMNS.items()})


def _median_of_others(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """For each value, the median of all the others (NaN when there are none), as ``np.median`` computes it."""
    count = len(values)
    if count < 2:
        return np.full(count, np.nan)
    if np.isnan(values).any():  # np.median's NaN rules, plainly
        return np.array([np.median(np.delete(values, i)) for i in range(count)])
    order = np.argsort(values, kind="stable")
    ranked = values[order]
    rank = np.empty(count, dtype=int)
    rank[order] = np.arange(count)
    others = count - 1

    def kth_of_others(k: int) -> np.ndarray[Any, Any]:
        """The k-th smallest of the others: skips each value's own rank."""
        return np.asarray(ranked[np.where(rank > k, k, k + 1)])

    if others % 2:
        return kth_of_others(others // 2)
    return np.asarray((kth_of_others(others // 2 - 1) + kth_of_others(others // 2)) / 2.0)


def eta_fit_summary(fit: pd.DataFrame) -> dict[str, Any]:
    """How many finished jobs ``eta_fit`` looked at, how many it predicted, and the median absolute error (%).

    Returns:
        ``{"jobs": int, "predicted": int, "median_abs_error_pct": float | None}`` (None when nothing was
        predicted).
    """
    errors = pd.to_numeric(fit["error_pct"], errors="coerce").dropna().abs()
    return {
        "jobs": len(fit),
        "predicted": int(fit["predicted_s"].notna().sum()),
        "median_abs_error_pct": round(float(errors.median()), 1) if len(errors) else None,
    }


def duration_summary(history: pd.DataFrame) -> pd.DataFrame:
    """Per format: exports finished, failed, median duration (minutes) and throughput (GB/h), rounded to whole units.

    Args:
        history: a ``jobs_frame(ledger)`` frame.
    """
    missing = [c for c in ("format", "state", "duration_s", "throughput_gb_h") if c not in history.columns]
    if missing:
        raise ConfigError(f"the history lacks column(s) {', '.join(missing)}; make it with ims_nb.jobs_frame()")
    done = history[history["state"].isin([s.value for s in DONE]) & (history["duration_s"] > 0)]
    failed = history[history["state"] == "failed"].groupby("format").size()
    grouped = done.groupby("format")
    summary = pd.DataFrame({
        "finished": grouped.size(),
        "median_minutes": (grouped["duration_s"].median() / 60).round(0),
        "median_gb_per_hour": grouped["throughput_gb_h"].median().round(0),
    })  # fmt: skip
    summary["failed"] = failed.reindex(summary.index.union(failed.index)).fillna(0).astype(int)
    summary = summary.reindex(summary.index.union(failed.index))
    summary["finished"] = summary["finished"].fillna(0).astype(int)
    summary["failed"] = failed.reindex(summary.index).fillna(0).astype(int)
    return summary.rename_axis("format")


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

    @classmethod
    def of_job(cls, job_id: str, record: dict[str, Any]) -> Progress:
        """A job's record as progress, for a watch over job ids (no ledger row, no ETA)."""
        entities, status = record.get("entities") or {}, str(record.get("status"))
        return cls(0, job_id, entities.get("image_name"), status, entities.get("process_percent"), None, False, status)


ProgressCallback = Callable[[Progress], None]
