"""``ExportDashboard``: the whole export workflow in one view: picker, verdicts, target and launch, progress, charts."""

from __future__ import annotations

import html
import io
import time
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import ipywidgets as w
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb import charts
from ims_nb.client.protocol import ClientLike
from ims_nb.exports.identity import ELSEWHERE
from ims_nb.exports.ledger import Ledger
from ims_nb.vocab import LIVE, Scope
from ims_nb.widgets.estate_views import endpoints, estate_facts, estate_jobs, facts_html, ledger_of, on_simulator_any
from ims_nb.widgets.log import LogPanel, reports_errors
from ims_nb.widgets.monitor import JobMonitor
from ims_nb.widgets.panel import ExportPanel
from ims_nb.widgets.picker import ImagePicker
from ims_nb.widgets.violations import ViolationsPreview

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["CssClass", "ExportDashboard", "chart_png", "connection_html", "ledger_note"]

#: Size (inches) and resolution of each chart: 720 x 405 pixels, two side by side.
CHART_SIZE: Final = (7.2, 4.05)
CHART_DPI: Final = 100
#: The page: centred, at most 1280 pixels wide.
PAGE_LAYOUT: Final = {"padding": "8px 16px", "max_width": "1280px", "margin": "0 auto"}
AMBER, INK, MUTED, RULE = "#fff4ce", "#5c4400", "#555555", "#d0d7de"
SIMULATOR_BANNER: Final = (
    "SIMULATOR: not a real account. Images, buckets and exports come from ims-nb's simulator at {endpoint}; "
    "nothing is sent to Huawei Cloud. Configure credentials (HUAWEICLOUD_SDK_AK / _SK) to work on your account."
)


class CssClass(StrEnum):
    """The CSS classes a browser test can find the dashboard's own parts by."""

    DASHBOARD = "ims-nb-dashboard"
    HEADER = "ims-nb-dashboard-header"
    SIMULATOR = "ims-nb-dashboard-simulator"
    SECTION = "ims-nb-dashboard-section"
    CHARTS = "ims-nb-dashboard-charts"
    DURATIONS = "ims-nb-dashboard-durations"
    TIMELINE = "ims-nb-dashboard-timeline"
    CHARTS_NOTE = "ims-nb-dashboard-charts-note"
    REFRESH = "ims-nb-dashboard-refresh"


def chart_png(plot: Callable[..., Axes], jobs: pd.DataFrame, *, size: tuple[float, float] = CHART_SIZE) -> bytes:
    """A chart of ``ims_nb.charts`` (``plot(jobs, ax=...)``) drawn on a matplotlib ``Figure`` (not pyplot), as PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=CHART_DPI, layout="constrained")
    plot(jobs, ax=figure.subplots())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def connection_html(client: ClientLike, ledger: Ledger) -> str:
    """The header: what the dashboard is connected to (region, endpoint, project, credentials) and its ledger."""
    settings = client.settings
    who = settings.credentials if settings.credentials is not None else f"password login as {settings.password}"
    facts = [("region", client.region), ("endpoint", client.endpoints.ims), ("project", client.project_id or "?"),
             ("signed with", who), ("ledger", ledger.url)]  # fmt: skip
    return _header_html(facts, "the simulator" if settings.is_simulator else "an account")


def estate_html(estate: Mapping[Scope, ClientLike], ledger: Ledger) -> str:
    """The header of an estate: its regions and projects (instead of one region and endpoint) and its ledger."""
    return _header_html(estate_facts(estate, ledger), "a simulator estate" if on_simulator_any(estate) else "an estate")


def _header_html(facts: Sequence[tuple[str, object]], where: str) -> str:
    lines = facts_html(facts, MUTED)
    return (f"<div style='font-size:1.5em;font-weight:600'>IMS image export to OBS "
            f"<span style='font-weight:400;color:{MUTED}'>· connected to {where}</span></div>"
            f"<div style='margin-top:4px;line-height:1.8'>{lines}</div>")  # fmt: skip


def ledger_note(jobs: pd.DataFrame) -> str:
    """``2 export(s) in the ledger: 1 running, 1 finished`` of the account's rows of ``jobs_frame`` (running: a
    live ledger state; finished: any other), then how many rows other accounts have there, if any."""
    elsewhere = jobs["belongs_to"].fillna("").str.startswith(f"{ELSEWHERE}:")
    mine = jobs[~elsewhere]
    running = int(mine["state"].isin([s.value for s in LIVE]).sum())
    note = f"{len(mine)} export(s) in the ledger: {running} running, {len(mine) - running} finished"
    return note + (f" (and {int(elsewhere.sum())} of other accounts)" if elsewhere.any() else "")


def _section(title: str, body: Any) -> Any:
    heading = w.HTML(f"<div style='font-size:1.2em;font-weight:600;border-bottom:1px solid {RULE};"
                     f"padding-bottom:2px;margin-top:14px'>{html.escape(title)}</div>")  # fmt: skip
    box = w.VBox([heading, body])
    box.add_class(CssClass.SECTION.value)
    return box


class ExportDashboard(w.VBox):  # type: ignore[misc]
    """``ImagePicker`` → ``ViolationsPreview`` → ``ExportPanel`` → ``JobMonitor``, with the ledger's charts below.

    A header says what it is connected to (with a SIMULATOR banner on a simulator). The duration and timeline
    charts of the ledger's exports (the rows of the client's account) are redrawn when a watch ends (and the
    picked images planned again) and by Refresh; the note beside them (how many are running and finished) is
    redrawn also when the panel plans or launches and when a followed row changes state.

    On an estate (``ims_nb.connect_estate``) the header names its regions and projects, the panel chooses a
    bucket per region and the charts are drawn from the rows of every scope.

    Args:
        client: an ``ImsClient``, or an ``Estate``.
        ledger: the ``Ledger`` exports are launched into and charted from, or its path or URL (default: the
            client's, ``ledger_for``: a simulator's own, else ``$IMS_NB_LEDGER``); the header shows its ``url``.
        images: the images frame to pick from (default: ``client.images()``, the estate's on an estate).
        page_size: picker rows per page.
        monitor: the ``JobMonitor`` to use (default: a new one on ``client`` and ``ledger``).
    """

    def __init__(
        self,
        client: ClientLike | Mapping[Scope, ClientLike],
        ledger: Ledger | str | Path | None = None,
        *,
        images: pd.DataFrame | None = None,
        page_size: int = 20,
        monitor: JobMonitor | None = None,
    ) -> None:
        self._client = client
        # the account's rows, as the panel and the monitor (an estate's: every scope's)
        self._ledger = ledger = ledger_of(client, ledger)
        if isinstance(client, Mapping):  # an estate: the picker takes its frame
            header = estate_html(client, ledger)
            frame = client.images() if images is None else images  # type: ignore[attr-defined]
            self._picker = ImagePicker(images=frame, page_size=page_size)
        else:
            self._picker = ImagePicker(client, images=images, page_size=page_size)
            header = connection_html(client, ledger)
        self._monitor = monitor if monitor is not None else JobMonitor(client, ledger)
        self._panel = ExportPanel(client, ledger, picker=self._picker, monitor=self._monitor)
        self._preview = ViolationsPreview(self._panel)
        self._header = w.HTML(header)
        self._header.add_class(CssClass.HEADER.value)
        banner = SIMULATOR_BANNER.format(endpoint=endpoints(client))
        self._banner = w.HTML(f"<div style='background:{AMBER};color:{INK};border:1px solid #e0b400;"
                              f"padding:8px 12px;border-radius:4px'><b>{html.escape(banner)}</b></div>",
                              layout=w.Layout(display="block" if on_simulator_any(client) else "none"))  # fmt: skip
        self._banner.add_class(CssClass.SIMULATOR.value)
        self._durations, self._timeline = (self._chart(css) for css in (CssClass.DURATIONS, CssClass.TIMELINE))
        self._charts_note = w.HTML()
        self._charts_note.add_class(CssClass.CHARTS_NOTE.value)
        self._refresh = w.Button(description="Refresh charts", icon="refresh", tooltip="redraw from the ledger")
        self._refresh.add_class(CssClass.REFRESH.value)
        self._refresh.on_click(self._on_refresh)
        charts_box = w.VBox([w.HBox([self._refresh, self._charts_note]), w.HBox([self._durations, self._timeline])])
        charts_box.add_class(CssClass.CHARTS.value)
        self.log_panel = LogPanel()  # the last child; ``log`` stays the widget's logging.Logger trait
        super().__init__([self._header, self._banner,
                          _section("1 · Pick images", self._picker),
                          _section("2 · What the service would say", self._preview),
                          _section("3 · Target and launch", self._panel),
                          _section("4 · Exports", self._monitor),
                          _section("5 · History of the ledger", charts_box),
                          self.log_panel], layout=w.Layout(**PAGE_LAYOUT))  # fmt: skip
        self.add_class(CssClass.DASHBOARD.value)
        self._charted, self._drawn_at = 0, ""
        self._monitor.observe(self._on_watch_ended, names="watches_ended")
        self._panel.observe(self._on_ledger_changed, names="review")  # set anew by every plan, and after a launch
        if self._monitor.has_trait("states"):
            self._monitor.observe(self._on_ledger_changed, names="states")
        self.refresh_charts()

    @staticmethod
    def _chart(css: CssClass) -> Any:
        image = w.Image(format="png", layout=w.Layout(flex="1 1 0", min_width="0", max_width="720px", height="auto",
                                                      object_fit="contain"))  # fmt: skip
        image.add_class(css.value)
        return image

    @property
    def picker(self) -> ImagePicker:
        return self._picker

    @property
    def preview(self) -> ViolationsPreview:
        return self._preview

    @property
    def panel(self) -> ExportPanel:
        return self._panel

    @property
    def monitor(self) -> JobMonitor:
        return self._monitor

    def refresh_charts(self) -> pd.DataFrame:
        """Redraw the duration and timeline charts from the ledger (what Refresh does); returns the jobs charted."""
        jobs = estate_jobs(self._ledger, self._client)
        self._durations.value = chart_png(charts.plot_durations, jobs)
        self._timeline.value = chart_png(charts.plot_timeline, jobs)
        self._charted, self._drawn_at = len(jobs), time.strftime("%H:%M:%S")
        self._show_note(jobs)
        return jobs

    def _show_note(self, jobs: pd.DataFrame | None = None) -> None:
        jobs = estate_jobs(self._ledger, self._client) if jobs is None else jobs
        text = f"{ledger_note(jobs)} · charts drawn at {self._drawn_at}"
        self._charts_note.value = f"<span style='color:{MUTED}'>{html.escape(text)}</span>"

    @reports_errors("refreshing the charts")
    def _on_refresh(self, _button: Any) -> None:
        self.refresh_charts()

    @reports_errors("counting the ledger's exports")
    def _on_ledger_changed(self, _change: dict[str, Any]) -> None:
        self._show_note()

    @reports_errors("charting the finished batch")
    def _on_watch_ended(self, _change: dict[str, Any]) -> None:
        self.refresh_charts()
        self._panel.refresh()  # the verdicts of the picked images change once their exports have ended

    def __repr__(self) -> str:
        where = "SIMULATOR" if on_simulator_any(self._client) else "account"
        region = (
            ",".join(sorted({r for r, _ in self._client})) if isinstance(self._client, Mapping) else self._client.region
        )
        return (f"ExportDashboard({where} {region}: {len(self._picker.frame)} images, "
                f"{len(self._picker.picked)} picked, {self._charted} export(s) charted)")  # fmt: skip
