"""Matplotlib charts of images and export jobs: each takes an Axes (or makes one) and returns it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import cycle
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb._extras import from_import_error
from ims_nb.errors import ConfigError

try:
    import matplotlib.dates as mdates
except ModuleNotFoundError as exc:  # one line naming the extra, not a traceback into matplotlib's absence
    raise from_import_error("ims_nb.charts", exc) from None
from ims_nb.exports.history import eta_fit_summary
from ims_nb.vocab import DONE, FAST_EXPORT_FORMAT, NORMAL_EXPORT_LIMIT, SIZE_LIMIT, Coverage, GiB, State

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["COVERAGE_COLOURS", "FORMAT_COLOURS", "STATE_COLOURS", "STATUS_COLOURS", "plot_coverage",
           "plot_durations", "plot_eta_fit", "plot_inventory", "plot_regions", "plot_sizes", "plot_throughput",
           "plot_timeline"]  # fmt: skip

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
#: What a per-region bar measures: images counted, or their bytes (shown in GiB).
Measure = Literal["images", "bytes"]
EXPORTABLE, NOT_EXPORTABLE = "exportable", "not exportable"
_SPARE_COLOURS: Final = ("#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5")
UNKNOWN: Final = "unknown"
#: Legend titles of the ``by`` columns whose names do not read well as one.
_LEGEND_TITLES: Final = {"launched_user": "launched by", "launched_host": "host"}
NO_IMAGES: Final = "no images"
NO_FINISHED: Final = "no finished exports yet"
NO_STARTED: Final = "no started exports yet"
NO_PREDICTIONS: Final = "no predictions yet (needs two finished exports of a format and size band)"
_FIGSIZE: Final = (8.0, 4.5)
_HOUR: Final = 3600.0
#: The most characters of an image name the timeline shows (longer names keep their start and end).
LABEL_WIDTH: Final = 20


def plot_inventory(images: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Image count by platform (bars, most images first), stacked by status; a missing platform is "unknown".

    Args:
        images: an images frame (``client.images()``): ``platform`` and ``status`` are read.
        ax: the Axes to draw on; a new figure's when None.

    Raises:
        ConfigError: a column the chart reads is missing (named in the message).
    """
    _require(images, ("platform", "status"), "plot_inventory")
    ax = _labelled(ax, "Images by platform and status", "platform", "images")
    if images.empty:
        return _nothing(ax, NO_IMAGES)
    platform, status = (_text(images[c]) for c in ("platform", "status"))
    counts = pd.crosstab(platform, status)
    counts = counts.loc[counts.sum(axis=1).sort_values(ascending=False, kind="stable").index]
    _stacked(ax, counts, _colours(counts.columns, STATUS_COLOURS))
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(title="status")
    return ax


def plot_regions(images: pd.DataFrame, *, measure: Measure = "images", ax: Axes | None = None) -> Axes:
    """Images (or their GiB) per region, stacked exportable / not exportable when the frame says (an
    ``exportable`` column, e.g. ``ims_nb.selection.exportability``), with each region's exportable share on top.

    Args:
        images: an estate's images frame (``estate.images()``): ``region`` and ``size_bytes`` are read.
        measure: ``"images"`` (counts) or ``"bytes"`` (the images' sizes, in GiB).
        ax: the Axes to draw on; a new figure's when None.

    Raises:
        ConfigError: a column the chart reads is missing (named in the message), or an unknown ``measure``.
    """
    _require(images, ("region", "size_bytes"), "plot_regions")
    ax = _labelled(ax, f"{_unit(measure).capitalize()} per region", "region", _unit(measure))
    if images.empty:
        return _nothing(ax, NO_IMAGES)
    known = "exportable" in images.columns
    split = pd.Series("images", index=images.index)
    if known:
        split = images["exportable"].fillna(False).astype(bool).map({True: EXPORTABLE, False: NOT_EXPORTABLE})
    table = _per_region(images, split, measure)
    table = table[[c for c in (EXPORTABLE, NOT_EXPORTABLE, "images") if c in table.columns]]
    bars = _stacked(ax, table, {EXPORTABLE: GREEN, NOT_EXPORTABLE: GREY, "images": BLUE})
    if known:
        share = table.get(EXPORTABLE, 0) / table.sum(axis=1).where(lambda total: total > 0)
        ax.bar_label(bars, labels=[f"{s:.0%} exportable" if pd.notna(s) else "" for s in share], padding=2)
        ax.legend()
    ax.margins(y=0.12)
    return ax


def plot_coverage(frame: pd.DataFrame, *, measure: Measure = "images", ax: Axes | None = None) -> Axes:
    """Per region, the images (or their GiB) in each coverage status, stacked covered first, not exportable last.

    Args:
        frame: a ``ims_nb.coverage`` frame: ``status`` and ``size_bytes`` are read, and ``region`` when present
            (else one bar, "all").
        measure: ``"images"`` (counts) or ``"bytes"`` (the images' sizes, in GiB).
        ax: the Axes to draw on; a new figure's when None.

    Raises:
        ConfigError: a column the chart reads is missing (named in the message), or an unknown ``measure``.
    """
    _require(frame, ("status", "size_bytes"), "plot_coverage")
    ax = _labelled(ax, f"Coverage per region ({_unit(measure)})", "region", _unit(measure))
    if frame.empty:
        return _nothing(ax, NO_IMAGES)
    frame = frame if "region" in frame.columns else frame.assign(region="all")
    table = _per_region(frame, _text(frame["status"]), measure)
    table = table[sorted(table.columns, key=lambda s: (list(COVERAGE_COLOURS).index(s) if s in COVERAGE_COLOURS
                                                       else len(COVERAGE_COLOURS), s))]  # fmt: skip
    _stacked(ax, table, _colours(table.columns, COVERAGE_COLOURS))
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], title="coverage", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


def plot_sizes(images: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Histogram of image sizes (log scale), with the 128 GB and 1 TB export limits as vertical lines.

    Args:
        images: an images frame (``client.images()``): ``size_gb`` is read; images of no known size are left out.
        ax: the Axes to draw on; a new figure's when None.

    Raises:
        ConfigError: ``size_gb`` is missing.
    """
    _require(images, ("size_gb",), "plot_sizes")
    ax = _labelled(ax, "Image sizes", "size (GB, log scale)", "images")
    sizes = pd.to_numeric(images["size_gb"], errors="coerce").dropna()
    sizes = sizes[sizes > 0].to_numpy(dtype=float)
    if not len(sizes):
        return _nothing(ax, NO_IMAGES)
    high = max(float(sizes.max()), SIZE_LIMIT / GiB) * 1.05
    ax.hist(sizes, bins=np.geomspace(min(float(sizes.min()), 1.0), high, 31).tolist(), color=GREY, label="images")
    ax.set_xscale("log")
    ax.axvline(NORMAL_EXPORT_LIMIT / GiB, color=BLUE, linestyle="--", label="128 GB: fast export only above")
    ax.axvline(SIZE_LIMIT / GiB, color=RED, linestyle="--", label="1 TB: no export")
    ax.legend()
    return ax


def plot_durations(jobs: pd.DataFrame, *, by: str = "format", ax: Axes | None = None) -> Axes:
    """Export duration (hours) against image size (GB), one colour per format; jobs without a duration left out.

    Args:
        jobs: a jobs frame (``ims_nb.jobs_frame``): ``format``, ``size_gb`` and ``duration_s`` are read.
        by: the column whose values get a colour each: ``format``, or ``launched_user`` (who launched each
            job), ``launched_host``, ... (read too).
        ax: the Axes to draw on; a new figure's when None.

    Raises:
        ConfigError: a column the chart reads is missing (named in the message).
    """
    _require(jobs, (by, "size_gb", "duration_s"), "plot_durations")
    seconds = pd.to_numeric(jobs["duration_s"], errors="coerce")
    unit, per = _duration_unit(float(seconds.max()) if seconds.notna().any() else 0.0)
    ax = _labelled(ax, "Export duration by image size", "image size (GB)", f"duration ({unit})")
    timed = jobs[seconds.notna().to_numpy(dtype=bool)]
    if timed.empty:
        return _nothing(ax, NO_FINISHED)
    groups = _text(timed[by])
    colours = _colours(groups, FORMAT_COLOURS if by == "format" else {})
    for name in sorted(colours):
        rows = timed[(groups == name).to_numpy()]
        durations = pd.to_numeric(rows["duration_s"]).to_numpy(dtype=float) / per
        ax.scatter(pd.to_numeric(rows["size_gb"]).to_numpy(dtype=float), durations, color=colours[name], label=name)
    _from_zero(ax)
    ax.legend(title=_LEGEND_TITLES.get(by, by))
    return ax


def plot_throughput(jobs: pd.DataFrame, *, by: str = "format", ax: Axes | None = None) -> Axes:
    """Histogram of the throughput (GB/h) of finished exports (succeeded or verified), stacked by format.

    Args:
        jobs: a jobs frame (``ims_nb.jobs_frame``): ``format``, ``state`` and ``throughput_gb_h`` are read.
        by: the column the bars are stacked by (as ``plot_durations``'s: ``format``, ``launched_user``, ...).
        ax: the Axes to draw on; a new figure's when None.

    Raises:
        ConfigError: a column the chart reads is missing (named in the message).
    """
    _require(jobs, (by, "state", "throughput_gb_h"), "plot_throughput")
    ax = _labelled(ax, "Throughput of finished exports", "throughput (GB/h)", "exports")
    rate = pd.to_numeric(jobs["throughput_gb_h"], errors="coerce")
    finished = jobs[(_text(jobs["state"]).isin([s.value for s in DONE]) & rate.notna()).to_numpy(dtype=bool)]
    if finished.empty:
        return _nothing(ax, NO_FINISHED)
    groups = _text(finished[by])
    colours = _colours(groups, FORMAT_COLOURS if by == "format" else {})
    names = sorted(colours)
    values = [pd.to_numeric(finished["throughput_gb_h"])[(groups == n).to_numpy()].to_numpy(float) for n in names]
    bins = np.histogram_bin_edges(np.concatenate(values), bins=20).tolist()
    ax.hist(values, bins=bins, stacked=True, label=names, color=[colours[n] for n in names])
    ax.legend(title=_LEGEND_TITLES.get(by, by))
    return ax


def plot_timeline(jobs: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """One bar per started export from ``begin_time`` to ``end_time`` (UTC), coloured by ledger state.

    Jobs without an ``end_time`` (still running) reach the latest time in the frame; jobs that never started are
    left out. Green is
    verified or succeeded, red failed or missing, blue running, grey anything else.

    Args:
        jobs: a jobs frame (``ims_nb.jobs_frame``): ``image_name``, ``state``, ``begin_time`` and ``end_time``.
        ax: the Axes to draw on; a new figure's when None.

    Raises:
        ConfigError: a column the chart reads is missing (named in the message).
    """
    _require(jobs, ("image_name", "state", "begin_time", "end_time"), "plot_timeline")
    ax = _labelled(ax, "Export timeline", "time (UTC)", "image")
    begin, end = (pd.to_datetime(jobs[c], utc=True, errors="coerce") for c in ("begin_time", "end_time"))
    started = begin.notna().to_numpy(dtype=bool)
    if not started.any():
        return _nothing(ax, NO_STARTED)
    latest = max(begin.max(), end.max()) if end.notna().any() else begin.max()
    frame = pd.DataFrame({"name": _text(jobs["image_name"]), "state": _text(jobs["state"]), "begin": _days(begin),
                          "end": _days(end.fillna(latest))})[started]  # fmt: skip
    frame = frame.sort_values("begin", kind="stable").reset_index(drop=True)
    for state in sorted(set(frame["state"])):
        rows = frame[frame["state"] == state]
        ax.barh(rows.index, rows["end"] - rows["begin"], left=rows["begin"], height=0.6,
                color=STATE_COLOURS.get(state, GREY), label=state)  # fmt: skip
    ax.set_yticks(
        frame.index, labels=[_short_label(name) for name in frame["name"]], fontsize=_label_size(ax, len(frame))
    )
    ax.invert_yaxis()
    locator = mdates.AutoDateLocator(tz="UTC")  # type: ignore[no-untyped-call, unused-ignore]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz="UTC")  # type: ignore[no-untyped-call, unused-ignore]
    ax.xaxis.set_major_formatter(formatter)
    ax.legend(title="state")
    return ax


def plot_eta_fit(fit: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Predicted against actual export duration (hours) from ``ims_nb.exports.history.eta_fit``, with the line y = x.

    The title gives the median absolute error of the predictions.

    Args:
        fit: an ``eta_fit`` frame: ``actual_s``, ``predicted_s`` and ``error_pct`` are read.
        ax: the Axes to draw on; a new figure's when None.

    Raises:
        ConfigError: a column the chart reads is missing (named in the message).
    """
    _require(fit, ("actual_s", "predicted_s", "error_pct"), "plot_eta_fit")
    summary = eta_fit_summary(fit)
    error = summary["median_abs_error_pct"]
    title = "ETA fit" if error is None else f"ETA fit: median absolute error {error:.1f}%"
    ax = _labelled(ax, title, "actual duration (hours)", "predicted duration (hours)")
    actual = pd.to_numeric(fit["actual_s"], errors="coerce").to_numpy(dtype=float, na_value=np.nan) / _HOUR
    predicted = pd.to_numeric(fit["predicted_s"], errors="coerce").to_numpy(dtype=float, na_value=np.nan) / _HOUR
    shown = ~np.isnan(actual) & ~np.isnan(predicted)
    if not shown.any():
        return _nothing(ax, NO_FINISHED if fit.empty else NO_PREDICTIONS)
    ax.scatter(actual[shown], predicted[shown], color=BLUE, label=f"{int(shown.sum())} exports")
    ax.axline((0.0, 0.0), slope=1.0, color=GREY, linestyle="--", label="y = x")
    ax.legend()
    return ax


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
