"""How well the ETA model predicts finished exports: leave-one-out predictions over the jobs history frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ConfigError
from ims_nb.exports.watch import size_band
from ims_nb.vocab import DONE

__all__ = ["FIT_COLUMNS", "duration_summary", "eta_fit", "eta_fit_summary"]

#: The columns of ``eta_fit``, in order, with their pandas dtypes.
FIT_COLUMNS = {"row_id": "Int64", "image_name": "string", "format": "string", "size_gb": "float64",
               "actual_s": "float64", "predicted_s": "float64", "error_pct": "float64"}  # fmt: skip
_NEEDED = ("row_id", "image_name", "format", "size_gb", "state", "duration_s")


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
