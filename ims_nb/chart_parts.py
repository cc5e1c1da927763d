"""The parts ``ims_nb.charts`` draws with: its palettes, and helpers that check, label, stack and date an Axes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import cycle
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb._extras import from_import_error
from ims_nb.errors import ConfigError

try:
    import matplotlib.dates as mdates
except ModuleNotFoundError as exc:  # one line naming the extra, not a traceback into matplotlib's absence
    raise from_import_error("ims_nb.charts", exc) from None
from ims_nb.vocab import FAST_EXPORT_FORMAT, Coverage, GiB, State

if TYPE_CHECKING:
    from matplotlib.axes import Axes

GREEN, RED, BLUE, GREY = "#2ca02c", "#d62728", "#1f77b4", "#7f7f7f"
#: Colours of export formats (``zvhd2`` is a fast export), and for any other format, in sorted order.
FORMAT_COLOURS: Final = {"qcow2": "#1f77b4", "vmdk": "#ff7f0e", "vhd": "#2ca02c", "zvhd": "#9467bd",
                         FAST_EXPORT_FORMAT: "#8c564b"}  # fmt: skip
#: Colours of image statuses (``ImageInfo.status``).
STATUS_COLOURS: Final = {"active": GREEN, "queued": "#bcbd22", "saving": BLUE, "deleted": GREY, "killed": RED}
#: Colours of ledger states on the timeline; any other state is grey.
STATE_COLOURS: Final = {State.VERIFIED.value: GREEN, State.SUCCEEDED.value: GREEN, State.FAILED.value: RED,
                        State.MISSING.value: RED, State.RUNNING.value: BLUE}  # fmt: skip
#: Colours of coverage statuses (``ims_nb.vocab.Coverage``), drawn in this order from the bottom of each bar.
COVERAGE_COLOURS: Final = {Coverage.COVERED.value: GREEN, Coverage.OUTSIDE.value: "#98df8a",
                           Coverage.IN_PROGRESS.value: BLUE, Coverage.STALE.value: "#ff7f0e",
                           Coverage.FAILED.value: RED, Coverage.NEVER.value: "#9467bd",
                           Coverage.NOT_EXPORTABLE.value: GREY}  # fmt: skip
_SPARE_COLOURS: Final = ("#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5")
UNKNOWN: Final = "unknown"
_FIGSIZE: Final = (8.0, 4.5)
_HOUR: Final = 3600.0
#: The most characters of an image name the timeline shows (longer names keep their start and end).
LABEL_WIDTH: Final = 20


def _unit(measure: str) -> str:
    if measure not in ("images", "bytes"):
        raise ConfigError(f"measure must be 'images' or 'bytes', not {measure!r}")
    return "images" if measure == "images" else "GiB"


def _per_region(frame: pd.DataFrame, split: pd.Series, measure: str) -> pd.DataFrame:
    """A table of regions (rows, most first) by ``split``'s values (columns): images counted, or GiB summed."""
    values = None if measure == "images" else pd.to_numeric(frame["size_bytes"], errors="coerce").fillna(0) / GiB
    table = pd.crosstab(_text(frame["region"]), split, values=values, aggfunc=None if values is None else "sum")
    table = table.fillna(0.0).astype(float)
    return table.loc[table.sum(axis=1).sort_values(ascending=False, kind="stable").index]


def _stacked(ax: Axes, table: pd.DataFrame, colours: Mapping[str, str]) -> Any:
    """One bar per row of ``table``, stacked by its columns in order; returns the top layer (a BarContainer)."""
    bottom = np.zeros(len(table))
    bars = None
    for name in table.columns:
        heights = table[name].to_numpy(dtype=float)
        bars = ax.bar([str(i) for i in table.index], heights, bottom=bottom, label=name, color=colours[name])
        bottom += heights
    return bars


def _short_label(name: str, width: int = LABEL_WIDTH) -> str:
    """``name`` in at most ``width`` characters: its start, an ellipsis and its end (where the numbers are)."""
    if len(name) <= width:
        return name
    tail = (width - 1) // 2
    return f"{name[: width - 1 - tail]}\u2026{name[len(name) - tail :]}"


def _label_size(ax: Axes, rows: int) -> float:
    """A tick label font size (points) at which ``rows`` labels fit the Axes' height, within 5 to 10 points."""
    height_pt = ax.bbox.height * 72 / ax.figure.dpi
    return float(min(10.0, max(5.0, 0.8 * height_pt / max(rows, 1))))


def _duration_unit(longest_s: float) -> tuple[str, float]:
    """The unit a duration axis reads best in for durations up to ``longest_s``: its name and its seconds."""
    if longest_s >= 2 * _HOUR:
        return "hours", _HOUR
    return ("minutes", 60.0) if longest_s >= 120 else ("seconds", 1.0)


def _from_zero(ax: Axes) -> None:
    """Both axes start at 0 (sizes and durations are never negative) and leave room above the largest point."""
    for limits, setter in ((ax.dataLim.intervalx, ax.set_xlim), (ax.dataLim.intervaly, ax.set_ylim)):
        top = float(limits[1])
        setter(0.0, top * 1.1 if top > 0 else 1.0)


def _require(frame: pd.DataFrame, columns: Iterable[str], chart: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"{chart} needs columns the frame lacks: {', '.join(missing)}")


def _labelled(ax: Axes | None, title: str, xlabel: str, ylabel: str) -> Axes:
    """The given Axes, or a new figure's (pyplot, so that notebooks show it inline), with its title and labels."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=_FIGSIZE)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def _nothing(ax: Axes, text: str) -> Axes:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=GREY)
    return ax


def _text(column: pd.Series) -> pd.Series:
    """A column as plain strings, missing values as "unknown"."""
    return column.astype("string").fillna(UNKNOWN).astype(object)


def _colours(names: Iterable[Any], known: Mapping[str, str]) -> dict[str, str]:
    """A colour per distinct name: its own when known, else the spare colours in sorted order."""
    distinct = sorted(set(names))
    spare = cycle([c for c in _SPARE_COLOURS if c not in known.values()])
    return {name: known[name] if name in known else next(spare) for name in distinct}


def _days(times: pd.Series) -> np.ndarray[Any, Any]:
    """UTC instants as matplotlib date numbers (days since its epoch)."""
    epoch = pd.Timestamp(mdates.get_epoch(), tz="UTC")  # type: ignore[no-untyped-call, unused-ignore]
    return np.asarray((times - epoch) / pd.Timedelta(days=1), dtype=float)


def _date_axis(ax: Axes) -> None:
    """The x axis reads as UTC dates and times, labelled as concisely as its span allows."""
    locator = mdates.AutoDateLocator(tz="UTC")  # type: ignore[no-untyped-call, unused-ignore]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz="UTC")  # type: ignore[no-untyped-call, unused-ignore]
    ax.xaxis.set_major_formatter(formatter)
