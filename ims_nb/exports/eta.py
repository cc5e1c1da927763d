"""The ETA model of a watch (median throughput per format and size band) and how well it fits past jobs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ConfigError
from ims_nb.vocab import DONE, GiB, State, written_format

#: Size bands (GiB) within which past job durations predict new ones.
SIZE_BANDS = (0, 16, 64, 128, 512, float("inf"))
#: The columns of ``eta_fit``, in order, with their pandas dtypes.
FIT_COLUMNS = {"row_id": "Int64", "image_name": "string", "format": "string", "size_gb": "float64",
               "actual_s": "float64", "predicted_s": "float64", "error_pct": "float64"}  # fmt: skip
_NEEDED = ("row_id", "image_name", "format", "size_gb", "state", "duration_s")


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
