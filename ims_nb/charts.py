"""Matplotlib charts of images and export jobs: each takes an Axes (or makes one) and returns it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.chart_parts import (
    _HOUR,
    BLUE,
    COVERAGE_COLOURS,
    FORMAT_COLOURS,
    GREEN,
    GREY,
    RED,
    STATE_COLOURS,
    STATUS_COLOURS,
    _colours,
    _date_axis,
    _days,
    _duration_unit,
    _from_zero,
    _label_size,
    _labelled,
    _nothing,
    _per_region,
    _require,
    _short_label,
    _stacked,
    _text,
    _unit,
)
from ims_nb.chart_parts import LABEL_WIDTH as LABEL_WIDTH
from ims_nb.exports.history import eta_fit_summary
from ims_nb.vocab import DONE, NORMAL_EXPORT_LIMIT, SIZE_LIMIT, GiB

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["COVERAGE_COLOURS", "FORMAT_COLOURS", "STATE_COLOURS", "STATUS_COLOURS", "plot_coverage",
           "plot_durations", "plot_eta_fit", "plot_inventory", "plot_regions", "plot_sizes", "plot_throughput",
           "plot_timeline"]  # fmt: skip

#: What a per-region bar measures: images counted, or their bytes (shown in GiB).
Measure = Literal["images", "bytes"]
EXPORTABLE, NOT_EXPORTABLE = "exportable", "not exportable"
#: Legend titles of the ``by`` columns whose names do not read well as one.
_LEGEND_TITLES: Final = {"launched_user": "launched by", "launched_host": "host"}
NO_IMAGES: Final = "no images"
NO_FINISHED: Final = "no finished exports yet"
NO_STARTED: Final = "no started exports yet"
NO_PREDICTIONS: Final = "no predictions yet (needs two finished exports of a format and size band)"


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
    _date_axis(ax)
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
