"""The jobs history: one row per export (durations, throughput), and the progress a watch reports.

The ETA model built from it and how well it fits are ``ims_nb.exports.eta``'s, re-exported here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ConfigError
from ims_nb.exports.eta import FIT_COLUMNS, SIZE_BANDS, EtaModel, eta_fit, eta_fit_summary, size_band
from ims_nb.exports.identity import belongs_to
from ims_nb.vocab import DONE, FAST_EXPORT_FORMAT, GiB

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
    "SIZE_BANDS",
]

TIME_DTYPE = "datetime64[ns, UTC]"
#: The columns of ``jobs_frame``, in order.
HISTORY_COLUMNS = ("row_id", "job_id", "image_id", "image_name", "bucket_url", "format", "quick", "size_gb", "state",
                   "status", "process_percent", "begin_time", "end_time", "duration_s", "throughput_gb_h",
                   "error_code", "fail_reason", "object_size", "note", "region", "project_id",
                   "belongs_to", "launched_by", "launched_user", "launched_host")  # fmt: skip
#: The columns of ``jobs_frame`` that say who launched a job where (``launched_by`` is the signer: ``AK <id>``).
WHO_COLUMNS = ("launched_by", "launched_user", "launched_host")


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
