"""Charts of images and export jobs, drawn from real simulator runs: asserted on their artists, not pixels."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer
from matplotlib.dates import ConciseDateFormatter

from ims_nb import charts
from ims_nb.chart_parts import _short_label
from ims_nb.client import ImsClient
from ims_nb.coverage import coverage
from ims_nb.errors import ConfigError, WaitTimeoutError
from ims_nb.exports.history import eta_fit, eta_fit_summary, jobs_frame
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import watch
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.selection import exportability
from ims_nb.vocab import Coverage, GiB

matplotlib.use("Agg")  # before pyplot: no display, and nothing above imports pyplot

import matplotlib.pyplot as plt  # noqa: E402

BUCKET = "ims-exports-cn-north-4"
FORMATS = ("qcow2", "vmdk", "vhd")
#: Polling coarse enough that hours of simulated time take a few hundred requests.
COARSE: dict[str, Any] = {"interval": 300.0, "max_interval": 1800.0, "max_rate": 1000.0}
#: Each chart and the columns it reads.
READS: dict[Callable[..., Axes], tuple[str, ...]] = {
    charts.plot_inventory: ("platform", "status"),
    charts.plot_sizes: ("size_gb",),
    charts.plot_durations: ("format", "size_gb", "duration_s"),
    charts.plot_throughput: ("format", "state", "throughput_gb_h"),
    charts.plot_timeline: ("image_name", "state", "begin_time", "end_time"),
    charts.plot_eta_fit: ("actual_s", "predicted_s", "error_pct"),
    charts.plot_regions: ("region", "size_bytes"),
    charts.plot_coverage: ("status", "size_bytes"),
}
#: Two regions made of one simulator's results: the second holds every third image again.
REGIONS = ("cn-north-4", "ap-southeast-1")
ALL_CHARTS = tuple(READS)


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


@pytest.fixture()
def images(sim_client: ImsClient) -> pd.DataFrame:
    return sim_client.images()


def run_exports(client: ImsClient, sim_time: Any, path: Path, *, per_format: int, **watching: Any) -> pd.DataFrame:
    """Launch ``per_format`` normal exports of different images in each format, watch them, return the jobs frame."""
    private = client.images(imagetype="private")
    with Ledger(path) as ledger:
        for number, file_format in enumerate(FORMATS):
            plan = plan_exports(private, bucket=BUCKET, key_template="exports/{id8}.{ext}", file_format=file_format,
                                quick=False, profile=SIMULATOR_PROFILE)  # fmt: skip
            rows = plan[plan["exportable"].fillna(False).astype(bool)].reset_index(drop=True)
            launch(rows.iloc[number * per_format : (number + 1) * per_format], client=client, ledger=ledger,
                   concurrency=1, max_rate=1000)  # fmt: skip
        with contextlib.suppress(WaitTimeoutError):  # a timeout leaves the jobs still running so in the frame
            watch(ledger, client=client, clock=sim_time, sleep=sim_time.sleep, **(COARSE | watching))
        return jobs_frame(ledger)


@pytest.fixture()
def jobs(sim_client: ImsClient, sim_time: Any, tmp_path: Path) -> pd.DataFrame:
    """Eighteen exports (six each of qcow2, vmdk and vhd) watched to the end: most verified, some failed."""
    frame = run_exports(sim_client, sim_time, tmp_path / "l.db", per_format=6)
    assert set(frame["format"]) == set(FORMATS)
    assert {"verified", "failed"} <= set(frame["state"]) <= {"verified", "failed"}
    return frame


@pytest.fixture()
def estate_images(images: pd.DataFrame, sim_client: ImsClient) -> pd.DataFrame:
    """An estate-like frame of two regions, each row with ``exportability``'s verdict."""
    judged = images.assign(exportable=exportability(images, client=sim_client))
    return two_regions(judged)


@pytest.fixture()
def covered(sim_client: ImsClient, sim_time: Any, tmp_path: Path) -> pd.DataFrame:
    """A coverage frame of two regions after a few exports (covered, failed, never and not exportable rows)."""
    run_exports(sim_client, sim_time, tmp_path / "l.db", per_format=2)
    with Ledger(tmp_path / "l.db") as ledger:
        frame = coverage(sim_client.images(), ledger, sim_client)
    return two_regions(frame)


def two_regions(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows as the first region's results, and every third row again as the second's."""
    first, second = (frame.iloc[::step].assign(region=region) for step, region in zip((1, 3), REGIONS, strict=True))
    return pd.concat([first, second], ignore_index=True)


def stack_totals(ax: Axes) -> dict[str, float]:
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    stacks = np.sum([[p.get_height() for p in c.patches] for c in ax.containers], axis=0)
    return dict(zip(ticks, [float(v) for v in stacks], strict=True))


def legend_labels(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def bar_heights(ax: Axes) -> float:
    return sum(patch.get_height() for container in ax.containers for patch in container)


# --- inventory and sizes ------------------------------------------------------------------------


def test_inventory_stacks_every_image_by_platform_and_status(images: pd.DataFrame) -> None:
    ax = charts.plot_inventory(images)

    assert bar_heights(ax) == len(images) == 200
    statuses = sorted(set(images["status"]))
    assert legend_labels(ax) == statuses
    assert [c.get_label() for c in ax.containers] == statuses
    for container, status in zip(ax.containers, statuses, strict=True):
        assert isinstance(container, BarContainer)
        assert container.patches[0].get_facecolor() == matplotlib.colors.to_rgba(charts.STATUS_COLOURS[status])
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    expected = images["platform"].value_counts()
    assert ticks[0] == expected.idxmax() and set(ticks) == set(expected.index)
    stacks = np.sum([[p.get_height() for p in c.patches] for c in ax.containers], axis=0)
    assert list(stacks) == [expected[t] for t in ticks]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("Images by platform and status", "platform", "images")


def test_inventory_shows_images_without_a_platform_as_unknown(images: pd.DataFrame) -> None:
    images = images.copy()
    images.loc[images.index[:3], "platform"] = pd.NA

    ax = charts.plot_inventory(images)

    assert "unknown" in [t.get_text() for t in ax.get_xticklabels()]
    assert bar_heights(ax) == len(images)


def test_sizes_histogram_counts_every_image_and_marks_the_export_limits(images: pd.DataFrame) -> None:
    ax = charts.plot_sizes(images)

    assert bar_heights(ax) == len(images)
    lines = {line.get_label(): list(line.get_xdata()) for line in ax.lines}  # type: ignore[arg-type]
    assert lines == {"128 GB: fast export only above": [128.0, 128.0], "1 TB: no export": [1024.0, 1024.0]}
    assert legend_labels(ax) == ["images", "128 GB: fast export only above", "1 TB: no export"]
    assert ax.get_xscale() == "log" and ax.get_xlim()[1] > 1024 > 128 > ax.get_xlim()[0]


# --- regions and coverage ----------------------------------------------------------------------


def test_regions_count_images_stacked_by_exportability_with_the_share_on_top(estate_images: pd.DataFrame) -> None:
    ax = charts.plot_regions(estate_images)

    counts = estate_images["region"].value_counts()
    assert stack_totals(ax) == {r: float(counts[r]) for r in REGIONS}
    assert [c.get_label() for c in ax.containers] == ["exportable", "not exportable"]
    assert ax.containers[0].patches[0].get_facecolor() == matplotlib.colors.to_rgba(charts.GREEN)
    first = estate_images[estate_images["region"] == REGIONS[0]]["exportable"].mean()
    assert ax.texts[0].get_text() == f"{first:.0%} exportable" and len(ax.texts) == len(REGIONS)
    assert (ax.get_title(), ax.get_ylabel()) == ("Images per region", "images")


def test_regions_in_bytes_sum_the_sizes_in_gib(estate_images: pd.DataFrame) -> None:
    ax = charts.plot_regions(estate_images, measure="bytes")

    sizes = estate_images.groupby("region")["size_bytes"].sum() / GiB
    assert stack_totals(ax) == pytest.approx({r: float(sizes[r]) for r in REGIONS})
    assert ax.get_ylabel() == "GiB"


def test_regions_without_a_verdict_are_one_bar_each_and_no_share(estate_images: pd.DataFrame) -> None:
    ax = charts.plot_regions(estate_images.drop(columns="exportable"))

    assert [c.get_label() for c in ax.containers] == ["images"] and not ax.texts
    assert sum(stack_totals(ax).values()) == len(estate_images)


def test_coverage_stacks_each_region_by_status_in_coverage_order(covered: pd.DataFrame) -> None:
    ax = charts.plot_coverage(covered)

    statuses = [c.get_label() for c in ax.containers]
    order = list(charts.COVERAGE_COLOURS)
    assert {"covered", "never", "not-exportable"} <= set(statuses)
    assert statuses == sorted(statuses, key=order.index)
    assert legend_labels(ax) == statuses[::-1]  # the legend reads as the bars do, top first
    for container, status in zip(ax.containers, statuses, strict=True):
        assert container.patches[0].get_facecolor() == matplotlib.colors.to_rgba(charts.COVERAGE_COLOURS[status])
    counts = covered["region"].value_counts()
    assert stack_totals(ax) == {r: float(counts[r]) for r in REGIONS}
    assert Coverage.COVERED.value in statuses


def test_coverage_in_bytes_and_without_regions(covered: pd.DataFrame) -> None:
    ax = charts.plot_coverage(covered, measure="bytes")
    assert sum(stack_totals(ax).values()) == pytest.approx(covered["size_bytes"].sum() / GiB)
    assert ax.get_title() == "Coverage per region (GiB)"

    single = charts.plot_coverage(covered.drop(columns="region"))
    assert list(stack_totals(single)) == ["all"]


@pytest.mark.parametrize("chart", [charts.plot_regions, charts.plot_coverage], ids=lambda c: c.__name__)
def test_an_unknown_measure_is_refused(chart: Callable[..., Axes], covered: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="measure must be 'images' or 'bytes', not 'rows'"):
        chart(covered.assign(region="r"), measure="rows")


# --- durations, throughput, timeline ------------------------------------------------------------


def test_durations_draw_one_scatter_per_format_with_its_jobs(jobs: pd.DataFrame) -> None:
    ax = charts.plot_durations(jobs)

    assert legend_labels(ax) == sorted(FORMATS)
    assert len(ax.collections) == len(FORMATS)
    for collection, file_format in zip(ax.collections, sorted(FORMATS), strict=True):
        assert isinstance(collection, PathCollection)
        mine = jobs[(jobs["format"] == file_format) & jobs["duration_s"].notna()]
        points = collection.get_offsets()
        assert len(points) == len(mine) == 6
        assert np.allclose(points, np.column_stack([mine["size_gb"], mine["duration_s"] / 60]))
        assert tuple(collection.get_facecolor()[0]) == matplotlib.colors.to_rgba(charts.FORMAT_COLOURS[file_format])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("image size (GB)", "duration (minutes)")  # under two hours: minutes


def test_durations_and_throughput_group_by_who_launched_each_job(jobs: pd.DataFrame) -> None:
    assert set(jobs["launched_user"]) == {"ims-operator"}  # the IAM user behind the simulator's access key
    team = jobs.assign(launched_user=pd.array(["ann", "bo", None] * (len(jobs) // 3), dtype="string"))

    durations = charts.plot_durations(team, by="launched_user")
    assert legend_labels(durations) == ["ann", "bo", "unknown"]
    assert durations.get_legend().get_title().get_text() == "launched by"
    timed = team[team["duration_s"].notna()]
    counts = [len(c.get_offsets()) for c in durations.collections]
    assert counts == [int((timed["launched_user"].fillna("unknown") == u).sum()) for u in ("ann", "bo", "unknown")]

    throughput = charts.plot_throughput(team, by="launched_user")
    assert legend_labels(throughput) == ["ann", "bo", "unknown"]
    with pytest.raises(ConfigError, match="launched_host"):
        charts.plot_durations(team.drop(columns="launched_host"), by="launched_host")


def test_throughput_counts_finished_jobs_only_stacked_by_format(jobs: pd.DataFrame) -> None:
    ax = charts.plot_throughput(jobs)

    finished = jobs[jobs["state"] == "verified"]
    assert len(finished) < len(jobs)  # the failed ones are left out
    assert legend_labels(ax) == sorted(FORMATS)
    # stacked: each format's bars sit on the previous ones, so the top layer holds every finished job
    top = ax.containers[-1]
    assert sum(p.get_height() + p.get_y() for p in top.patches) == len(finished)
    first = ax.containers[0]
    assert sum(p.get_height() for p in first.patches) == (finished["format"] == sorted(FORMATS)[0]).sum()


def test_timeline_draws_a_bar_per_started_job_coloured_by_state(jobs: pd.DataFrame) -> None:
    ax = charts.plot_timeline(jobs)

    bars = [patch for container in ax.containers for patch in container]
    assert len(bars) == len(jobs) == 18
    assert legend_labels(ax) == ["failed", "verified"]
    colours = {c.get_label(): c.patches[0].get_facecolor() for c in ax.containers}
    assert colours == {"failed": matplotlib.colors.to_rgba("#d62728"), "verified": matplotlib.colors.to_rgba("#2ca02c")}
    ordered = jobs.sort_values("begin_time", kind="stable")
    assert [t.get_text() for t in ax.get_yticklabels()] == [_short_label(n) for n in ordered["image_name"]]
    starts = sorted(bar.get_x() for bar in bars)
    assert np.allclose(starts, sorted(mdates.date2num(jobs["begin_time"].dt.tz_convert(None).to_numpy())))
    lengths = sorted(bar.get_width() * 86400 for bar in bars)
    assert np.allclose(lengths, sorted(jobs["duration_s"]), atol=1e-3)
    assert isinstance(ax.xaxis.get_major_formatter(), ConciseDateFormatter)


def test_timeline_runs_unfinished_jobs_to_the_latest_time_seen(
    sim_client: ImsClient, sim_time: Any, tmp_path: Path
) -> None:
    jobs = run_exports(sim_client, sim_time, tmp_path / "l.db", per_format=2, timeout=600.0)
    running = jobs[jobs["state"] == "running"]
    assert len(running) and running["begin_time"].notna().all() and running["end_time"].isna().all()

    ax = charts.plot_timeline(jobs)

    latest = max(jobs["begin_time"].max(), jobs["end_time"].max())
    (container,) = [c for c in ax.containers if c.get_label() == "running"]
    assert len(container.patches) == len(running)
    for bar in container.patches:
        assert bar.get_x() + bar.get_width() == pytest.approx(mdates.date2num(latest.tz_convert(None)))
        assert bar.get_facecolor() == matplotlib.colors.to_rgba(charts.STATE_COLOURS["running"])


def test_timeline_labels_are_short_and_sized_to_fit_so_the_bars_keep_the_width(jobs: pd.DataFrame) -> None:
    jobs = jobs.copy()
    jobs["image_name"] = [f"a-very-long-image-name-of-a-migration-wave-{n:05d}" for n in range(len(jobs))]

    ax = charts.plot_timeline(jobs)
    ax.figure.canvas.draw()  # type: ignore[union-attr]

    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert all(len(label) == charts.LABEL_WIDTH and label.endswith("-000" + label[-2:]) for label in labels)
    assert len(set(labels)) == len(jobs)  # the numbered ends keep them apart
    widest = max(t.get_window_extent().width for t in ax.get_yticklabels())
    assert widest < 0.3 * ax.get_window_extent().width
    sizes = {t.get_fontsize() for t in ax.get_yticklabels()}
    (size,) = sizes
    assert 5 <= size <= 10 and size * len(jobs) <= ax.get_window_extent().height  # rows do not overlap
    assert _short_label("short-name-00001") == "short-name-00001"


@pytest.mark.parametrize(
    ("seconds", "unit"), [((6.0, 7.0), "seconds"), ((600.0, 630.0), "minutes"), ((9000.0, 12000.0), "hours")]
)
def test_durations_of_two_points_have_axes_from_zero_in_a_readable_unit(
    seconds: tuple[float, float], unit: str
) -> None:
    jobs = pd.DataFrame({"format": ["qcow2", "vmdk"], "size_gb": [20.0, 20.0], "duration_s": list(seconds)})

    ax = charts.plot_durations(jobs)

    per = {"seconds": 1, "minutes": 60, "hours": 3600}[unit]
    assert ax.get_ylabel() == f"duration ({unit})"
    assert ax.get_xlim() == pytest.approx((0.0, 22.0)) and ax.get_ylim() == pytest.approx((0.0, seconds[1] / per * 1.1))
    assert ax.yaxis.get_offset_text().get_text() == ""


# --- ETA fit ------------------------------------------------------------------------------------


def test_eta_fit_plots_each_prediction_against_its_duration(jobs: pd.DataFrame) -> None:
    fit = eta_fit(jobs)
    summary = eta_fit_summary(fit)
    assert 0 < summary["predicted"] < summary["jobs"] == (jobs["state"] == "verified").sum()

    ax = charts.plot_eta_fit(fit)

    (points,) = ax.collections
    predicted = fit.dropna(subset=["predicted_s"])
    assert np.allclose(points.get_offsets(), predicted[["actual_s", "predicted_s"]].to_numpy() / 3600)
    assert legend_labels(ax) == [f"{summary['predicted']} exports", "y = x"]
    (diagonal,) = ax.lines
    assert diagonal.get_label() == "y = x"
    assert ax.get_title() == f"ETA fit: median absolute error {summary['median_abs_error_pct']:.1f}%"


# --- every chart --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chart", "text"),
    [
        (charts.plot_inventory, "no images"),
        (charts.plot_sizes, "no images"),
        (charts.plot_durations, "no finished exports yet"),
        (charts.plot_throughput, "no finished exports yet"),
        (charts.plot_timeline, "no started exports yet"),
        (charts.plot_eta_fit, "no finished exports yet"),
        (charts.plot_regions, "no images"),
        (charts.plot_coverage, "no images"),
    ],
)
def test_an_empty_frame_gives_a_titled_axes_saying_so(
    chart: Callable[..., Axes], text: str, sim_client: ImsClient, tmp_path: Path
) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        empty_jobs = jobs_frame(ledger)
    no_images = sim_client.images().head(0)
    frames = {charts.plot_inventory: no_images, charts.plot_sizes: no_images, charts.plot_eta_fit: eta_fit(empty_jobs),
              charts.plot_regions: no_images.assign(region=pd.Series(dtype="string")),
              charts.plot_coverage: pd.DataFrame({"region": [], "status": [], "size_bytes": []})}  # fmt: skip

    ax = chart(frames.get(chart, empty_jobs))

    assert [t.get_text() for t in ax.texts] == [text]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert not ax.containers and not ax.collections


def test_eta_fit_without_predictions_says_what_it_needs(jobs: pd.DataFrame) -> None:
    fit = eta_fit(jobs.head(1))

    ax = charts.plot_eta_fit(fit)

    assert ax.texts[0].get_text().startswith("no predictions yet")
    assert ax.get_title() == "ETA fit"


@pytest.mark.parametrize("chart", ALL_CHARTS, ids=lambda chart: chart.__name__)
def test_missing_columns_are_named(chart: Callable[..., Axes]) -> None:
    *present, absent = READS[chart]

    with pytest.raises(ConfigError, match=f"{chart.__name__} needs columns the frame lacks: {absent}$"):
        chart(pd.DataFrame({column: [1.0] for column in present}))
    with pytest.raises(ConfigError, match=", ".join(READS[chart])):
        chart(pd.DataFrame({"name": ["a"]}))


def test_a_given_axes_is_drawn_on_and_returned(
    images: pd.DataFrame, jobs: pd.DataFrame, estate_images: pd.DataFrame, covered: pd.DataFrame
) -> None:
    figure, axes = plt.subplots(2, 4)
    frames = [images, images, jobs, jobs, jobs, eta_fit(jobs), estate_images, covered]

    for chart, ax, frame in zip(ALL_CHARTS, axes.flat, frames, strict=True):
        assert chart(frame, ax=ax) is ax
        assert ax.get_title() and (ax.containers or ax.collections)

    assert plt.get_fignums() == [figure.number]


def test_without_axes_each_chart_makes_a_pyplot_figure(images: pd.DataFrame) -> None:
    ax = charts.plot_sizes(images)

    assert plt.get_fignums() == [ax.figure.number]  # type: ignore[union-attr]


def test_charts_change_no_global_style(
    images: pd.DataFrame, jobs: pd.DataFrame, estate_images: pd.DataFrame, covered: pd.DataFrame
) -> None:
    before = dict(matplotlib.rcParams)
    frames = [images, images, jobs, jobs, jobs, eta_fit(jobs), estate_images, covered]

    for chart, frame in zip(ALL_CHARTS, frames, strict=True):
        chart(frame)

    assert dict(matplotlib.rcParams) == before


def test_importing_the_package_does_not_import_matplotlib() -> None:
    code = "import sys, ims_nb; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
