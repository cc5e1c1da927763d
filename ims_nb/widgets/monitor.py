"""A live view of a batch of exports: a progress bar per ledger row (grouped by region), updated by an asyncio task."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import traitlets

from ims_nb.client.config import on_simulator
from ims_nb.client.pacing import Pacing, clock_speed, pacing_at
from ims_nb.client.protocol import AsyncClientLike, ClientLike
from ims_nb.errors import ConfigError
from ims_nb.exports.history import jobs_frame
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.watch import Progress
from ims_nb.vocab import DONE, LIVE, Scope
from ims_nb.widgets.estate_views import lead_client, ledger_of, live_rows, watch_each
from ims_nb.widgets.log import LogPanel, reports_errors, run_reporting
from ims_nb.widgets.monitor_text import FAILED as FAILED  # the monitor's text was long imported from here
from ims_nb.widgets.monitor_text import SEPARATOR as SEPARATOR
from ims_nb.widgets.monitor_text import STALLED as STALLED
from ims_nb.widgets.monitor_text import (
    BarStyle,
    bar_style,
    by_region,
    clock_note,
    header_text,
    region_heading,
    region_of,
    row_text,
    summary,
    who_text,
)
from ims_nb.widgets.monitor_text import human_eta as human_eta

NO_LOOP = (
    "start() needs a running asyncio loop: call it from a notebook cell or a coroutine; "
    "headless, use `await monitor.wait()`"
)
#: The "launched by" choice that shows every user's rows.
EVERYONE = "everyone"


class _ExportRow:
    """One followed export: name, bar and status text in an HBox."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.state, self.region, self.user = str(row["state"]), region_of(row), row.get("launched_user")
        self._name = w.Label(value=str(row.get("image_name") or row["image_id"]), layout=w.Layout(width="16em"))
        self._bar = w.FloatProgress(value=0.0, min=0.0, max=100.0, bar_style=BarStyle.RUNNING.value)
        self._text = w.HTML()
        self._who = w.Label(value=who_text(row))
        self.box = w.HBox([self._name, self._bar, self._text, self._who])
        parts = (
            (self.box, "row"),
            (self._name, "name"),
            (self._bar, "bar"),
            (self._text, "status"),
            (self._who, "who"),
        )
        for part, name in parts:
            part.add_class(f"ims-nb-monitor-{name}")
        self.show(row)

    def show(self, row: dict[str, Any], *, eta_seconds: float | None = None, stalled: bool = False) -> None:
        self.state = str(row["state"])
        percent = 100.0 if self.state in DONE else float(row.get("process_percent") or 0.0)
        self._bar.value = min(max(percent, 0.0), 100.0)
        self._bar.bar_style = bar_style(self.state)
        self._text.value = row_text(row, eta_seconds=eta_seconds, stalled=stalled)


class JobMonitor(w.VBox):  # type: ignore[misc]
    """Progress bars for a batch of exports of a ledger, followed by an asyncio task (never a thread).

    ``start()`` runs ``watch_async`` as a task on the running loop (the kernel's, in Jupyter); ``stop()``
    cancels it (the exports go on in the cloud); ``await monitor.wait()`` runs it to the end headless. The
    watch records every live row of the ledger, but only the followed rows are shown: with ``follow()``'s
    default (the ledger's live rows) rows that start reporting later (another launch) are added; with rows
    given explicitly, other rows are recorded in the ledger but not shown (and the task runs until they end too).
    Rows of more than one region are grouped under a heading per region with that region's summary.
    On an estate, the rows of every scope are followed, each scope's watched with its own client at once.

    Args:
        client: a sync client such as ``ImsClient`` (the task uses, then closes, ``client.to_async()``) or an
            async one such as ``AsyncImsClient`` (one without ``to_async``: used as is, left open); or an
            ``Estate`` (one watch per scope, each with its client's ``to_async()``).
        ledger: the export ledger the batch was launched into, or its path or URL (default: the client's, as
            ``ledger_for`` gives it).
        pacing: the polling cadence (default: ``pacing_for(client)``, read when the watch starts, with the
            simulator clock's speed that the header then shows: ETAs are in real time).
        timeout: seconds before the watch gives up (a ``WaitTimeoutError`` in ``log_panel``); None waits on.
        clock: the watch's clock.
        sleep: the watch's awaitable sleep.
    """

    #: How many watches have ended (done, failed or stopped), counted after their final states are shown.
    watches_ended = traitlets.Int(0, read_only=True)
    states = traitlets.Dict()  # row id -> ledger state of the rows shown; a new dict on a state change, not a tick

    def __init__(
        self,
        client: ClientLike | AsyncClientLike | Mapping[Scope, ClientLike],
        ledger: Ledger | str | Path | None = None,
        *,
        pacing: Pacing | None = None,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._client, self._pacing, self._timeout = client, pacing, timeout
        # only the rows of the account the client is on (an estate's: every scope's, each watch binds its own)
        self._ledger = ledger_of(client, ledger)
        self._clock, self._sleep = clock, sleep
        self._task: asyncio.Task[pd.DataFrame | None] | None = None
        self._rows: dict[int, _ExportRow] = {}
        self._headings: dict[str, Any] = {}  # region -> its heading, while the rows span more than one region
        self._follow_all = True
        self._clock_note = ""  # the simulator clock's speed, read when a watch starts
        self._header = w.HTML()
        self._stop = w.Button(description="Stop", icon="stop", disabled=True, tooltip="stop watching")
        self._stop.on_click(self._on_stop)
        self._launcher = w.Dropdown(description="launched by", options=[EVERYONE], value=EVERYONE)
        self._launcher.observe(self._on_launcher, names="value")
        self._bars = w.VBox()
        self.log_panel = LogPanel()  # the last child; ``log`` stays the widget's logging.Logger trait
        super().__init__([w.HBox([self._header, self._stop, self._launcher]), self._bars, self.log_panel])
        self.add_class("ims-nb-monitor")
        self._header.add_class("ims-nb-monitor-header")
        self._stop.add_class("ims-nb-monitor-stop")
        self._launcher.add_class("ims-nb-monitor-launcher")
        self.follow()

    def __repr__(self) -> str:
        return f"JobMonitor({summary(r.state for r in self._rows.values())})"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def follow(self, rows: pd.DataFrame | Iterable[int] | None = None) -> JobMonitor:
        """Show these exports: a frame from ``launch`` (its ``row_id``), ledger row ids, or (None) the live rows.

        Each row shows its state in the ledger at once (finished rows: their final state).
        """
        self._follow_all = rows is None
        if rows is None:
            row_ids = [r["row_id"] for r in live_rows(self._ledger, self._client)]
        elif isinstance(rows, pd.DataFrame):
            if "row_id" not in rows.columns:
                raise ConfigError("follow() takes the frame launch() returns (with a row_id column), or row ids")
            row_ids = list(rows["row_id"].dropna())
        else:
            row_ids = list(rows)
        try:
            ids = list(dict.fromkeys(int(i) for i in row_ids))
        except (TypeError, ValueError):
            raise ConfigError(f"follow() takes ledger row ids (integers), not {row_ids!r}") from None
        self._rows = {i: _ExportRow(self._ledger.row(i)) for i in ids}
        self._lay_out()
        self._show_header()
        return self

    def start(self) -> asyncio.Task[pd.DataFrame | None]:
        """Start watching as a task on the running loop (or return the task already running).

        Raises:
            ConfigError: there is no running asyncio loop (see ``wait()`` for headless runs).
        """
        if self._task is not None and not self._task.done():
            return self._task
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigError(NO_LOOP) from None
        self._task = loop.create_task(self._run())
        self._task.add_done_callback(self._on_done)
        self._stop.disabled = False
        self._show_header()
        return self._task

    def stop(self) -> None:
        """Stop watching (the task is cancelled); the exports go on in the cloud."""
        if self._task is None or self._task.done():
            return
        self._task.cancel()
        self._stop.disabled = True
        live = sum(r.state in LIVE for r in self._rows.values())
        self.log_panel.info(f"stopped watching: {live} export(s) go on in the cloud; start() again to follow them")

    async def wait(self) -> pd.DataFrame:
        """Watch to the end (starting if needed) and return ``jobs_frame`` of the followed rows."""
        task = self.start()
        try:
            await task  # cancelling the caller cancels the watch too
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller was cancelled, not only the watch (stopped before it began)
        frame = jobs_frame(self._ledger)
        return frame[frame["row_id"].isin(list(self._rows))].reset_index(drop=True)

    async def _run(self) -> pd.DataFrame | None:
        return await run_reporting(self, "watching exports", self._watch())

    async def _watch(self) -> pd.DataFrame:
        lead = lead_client(self._client)  # an estate's clock is its first scope's (a simulator's is shared)
        if on_simulator(lead) or self._pacing is None:
            speed = clock_speed(lead)  # one loopback call on a simulator
            self._pacing = self._pacing or pacing_at(speed)
            self._clock_note = clock_note(speed) if on_simulator(lead) else ""
            self._show_header()
        return await watch_each(self._ledger, self._client, on_progress=self._on_progress, timeout=self._timeout,
                                clock=self._clock, sleep=self._sleep, **self._pacing.as_kwargs())  # fmt: skip

    @reports_errors("showing progress")
    def _on_progress(self, progress: Progress) -> None:
        shown = self._rows.get(progress.row_id)
        row = self._ledger.row(progress.row_id)
        if shown is None:
            if not self._follow_all:
                return  # recorded in the ledger, not part of the followed batch
            shown = self._rows[progress.row_id] = _ExportRow(row)
            self._lay_out()
        shown.show(row, eta_seconds=progress.eta_seconds, stalled=progress.stalled)
        self._show_header()
        self._note_state(progress.row_id, shown.state)

    @reports_errors("choosing whose exports to show")
    def _on_launcher(self, _change: Any) -> None:
        self._lay_out()

    @reports_errors("stopping")
    def _on_stop(self, _button: Any) -> None:
        self.stop()

    @reports_errors("showing the final states")
    def _on_done(self, _task: asyncio.Task[pd.DataFrame | None]) -> None:
        self._stop.disabled = True
        try:
            for row_id, shown in self._rows.items():
                shown.show(self._ledger.row(row_id))
                self._note_state(row_id, shown.state)
            self._show_header()
        finally:
            self.set_trait("watches_ended", self.watches_ended + 1)

    def _note_state(self, row_id: int, state: str) -> None:
        known = dict[Any, str](self.states)
        if known.get(row_id) != state:
            self.states = known | {row_id: state}

    def _lay_out(self) -> None:
        """The bars in row order, or, when the rows span several regions, a heading and the bars of each; only the
        rows of the user chosen in "launched by" (everyone's by default)."""
        users = [EVERYONE, *sorted({str(r.user) for r in self._rows.values() if r.user})]
        if list(self._launcher.options) != users:
            chosen = self._launcher.value
            with self._launcher.hold_trait_notifications():
                self._launcher.options, self._launcher.value = users, chosen if chosen in users else EVERYONE
        shown = {i: r for i, r in self._rows.items() if self._launcher.value in (EVERYONE, r.user)}
        groups = by_region({row_id: row.region for row_id, row in shown.items()})
        if len(groups) <= 1:
            self._headings = {}
            self._bars.children = [r.box for r in shown.values()]
            return
        self._headings = {region: self._headings.get(region) or _heading() for region in groups}
        boxes = [w.VBox([self._headings[region], *(self._rows[i].box for i in ids)]) for region, ids in groups.items()]
        for box in boxes:
            box.add_class("ims-nb-monitor-group")
        self._bars.children = boxes

    def _show_header(self) -> None:
        for region, heading in self._headings.items():
            heading.value = region_heading(region, [r.state for r in self._rows.values() if r.region == region])
        states = [r.state for r in self._rows.values()]
        self._header.value = header_text(states, self.running, self._clock_note, time.strftime("%H:%M:%S"))


def _heading() -> Any:
    heading = w.HTML()
    heading.add_class("ims-nb-monitor-region")
    return heading
