"""What the notebooks do on a simulator that they never do elsewhere: sample picks, a sample history, a headless run."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.config import on_simulator
from ims_nb.client.protocol import ClientLike
from ims_nb.exports.gap import coverage_gap_plan, launch_gap
from ims_nb.exports.history import jobs_frame
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger, location_for
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import watch
from ims_nb.selection import exportability
from ims_nb.targets import bucket_choices
from ims_nb.vocab import FILE_FORMATS

if TYPE_CHECKING:
    from ims_nb.estate import Estate
    from ims_nb.widgets.panel import ExportPanel
    from ims_nb.widgets.picker import ImagePicker
    from ims_nb.widgets.violations import ViolationsPreview

log = logging.getLogger("ims_nb")
HISTORY_TEMPLATE = "history/{name}-{id8}.{ext}"
#: Where the coverage notebook exports the gap: each region's Standard bucket of the simulator, a key per project.
GAP_TARGET = "ims-exports-{region}:gap/{project}/{name}-{id8}.{ext}"
_UNPICKED = "so running every cell sends nothing you did not pick"
_AGAIN = "launch with the buttons above, then run this cell again."


class SimulatedTime:
    """A clock and a sleep for ``watch`` that move a simulator client's clock instead of waiting (instant)."""

    def __init__(self, client: ClientLike, *, step: float = 1.0) -> None:
        self._client = client
        self._step = step  # shorter sleeps are gathered into one move of the simulator's clock
        self._owed = 0.0
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self.now += seconds
        self._owed += seconds
        if self._owed >= self._step:
            self._client.simulator_clock(advance=self._owed)
            self._owed = 0.0


def ensure_history(client: ClientLike, ledger: Ledger, *, exports: int = 24) -> str:
    """On a simulator whose ledger has few finished exports, export a sample in every format and run the
    simulator's clock through them, so the history charts have something to show. On a real account: nothing.

    Returns:
        What was done, in one sentence.
    """
    finished = int(jobs_frame(ledger)["duration_s"].notna().sum())
    if not on_simulator(client):
        return f"a real account: the history is the ledger's {finished} finished export(s); nothing was launched"
    if finished >= exports:
        return f"the ledger already holds {finished} finished exports"
    usable = [c.name for c in bucket_choices(client) if c.problem is None]
    if not usable:
        return "the simulator has no usable bucket; nothing was launched"
    images = client.images().sort_values("id").reset_index(drop=True)
    time = SimulatedTime(client)
    launched = 0
    for number, file_format in enumerate(FILE_FORMATS):
        share = images.iloc[number :: len(FILE_FORMATS)]
        plan = plan_exports(share, bucket=usable[0], key_template=HISTORY_TEMPLATE, file_format=file_format,
                            client=client)  # fmt: skip
        plan = plan[plan["exportable"].fillna(False).astype(bool)].head((exports - finished) // len(FILE_FORMATS) + 1)
        launched += len(launch(plan, client=client, ledger=ledger, concurrency=1, clock=time, sleep=time.sleep))
    watch(ledger, client=client, clock=time, sleep=time.sleep)
    done = int(jobs_frame(ledger)["duration_s"].notna().sum())
    return f"exported {launched} sample image(s) on the simulator; the ledger now holds {done} finished exports"


def sample_picks(images: pd.DataFrame, client: ClientLike, *, good: int = 2, refused: int = 1) -> list[str]:
    """On the client's own embedded simulator: the ids of the ``good`` smallest exportable images and of ``refused``
    refused ones (private ones first, smallest first); otherwise none.

    The notebooks' headless path exports these. Only a kernel that started its own simulator (nbval, CI) gets
    picks: under ``make lab`` (a shared simulator, used by hand) and on a real account, running every cell sends
    nothing that was not picked by hand.
    """
    if not on_simulator(client) or getattr(client.settings, "simulator", None) is None:
        return []
    ok = exportability(images, client=client).to_numpy()
    by_size = images.assign(_ok=ok).sort_values(["size_bytes", "id"])
    refusals = by_size[~by_size["_ok"]]
    refusals = refusals.assign(_public=refusals["image_type"] != "private").sort_values(["_public", "size_bytes", "id"])
    chosen = by_size[by_size["_ok"]].head(good)["id"].tolist() + refusals.head(refused)["id"].tolist()
    return [str(i) for i in chosen]


class Note(str):
    """A sentence a notebook cell shows as it is (no quotes), where a table or a chart would have nothing to show."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def why_nothing_is_sent(client: object) -> str:
    """Why ``sample_picks`` picks nothing for this client or estate (the end of a sentence, no full stop)."""
    if on_simulator(client) or getattr(client, "is_simulator", False) is True:
        return f"this kernel uses a simulator it did not start (the one make lab runs), {_UNPICKED}"
    return f"this kernel is on a real account, {_UNPICKED}"


class Headless:
    """The export notebook's headless section: the calls the buttons make, one step a cell.

    On the kernel's own simulator (nbval, CI) it picks ``sample_picks``, asks, launches, and each step shows its
    table. Elsewhere it picks and sends nothing: each step shows the batch picked or launched with the buttons
    above when there is one, else says in one sentence that nothing was done headlessly, why, and what to click.
    """

    PICKED = ("name", "verdict", "rules")
    LAUNCHED = ("image_name", "state")
    WATCHED = ("image_name", "format", "state", "status", "process_percent")

    def __init__(
        self, client: ClientLike, *, picker: ImagePicker, panel: ExportPanel, preview: ViolationsPreview
    ) -> None:
        self._picker, self._panel, self._preview = picker, panel, preview
        self.picks = sample_picks(picker.frame, client)
        self._why = why_nothing_is_sent(client)

    def pick(self) -> pd.DataFrame | Note:
        """Pick the sample (own simulator only); the verdicts of what is picked, or why nothing is."""
        if self.picks:
            self._picker.pick(*self.picks)
        verdicts = self._preview.verdicts()
        if len(verdicts):
            return verdicts[list(self.PICKED)]
        return Note(f"Nothing picked headlessly: {self._why}; tick images in section 1 above.")

    def ask(self) -> str:
        """What Launch would ask for the sample (own simulator only), or why nothing is asked."""
        if self.picks:
            return self._panel.ask()
        return Note(f"Nothing asked headlessly: {self._why}; Launch in section 3 above asks before it sends.")

    def launch(self) -> pd.DataFrame | Note:
        """Launch the sample (own simulator only); what was launched, by this call or by the buttons, or why nothing."""
        launched = self._panel.launch() if self.picks else self._panel.launched
        if launched is not None and len(launched):
            return launched[list(self.LAUNCHED)]
        return Note(f"Nothing launched headlessly: {self._why}; press Launch in section 3 above to export your picks.")

    def watched(self, done: pd.DataFrame) -> pd.DataFrame | Note:
        """The final rows of the watched batch (``await monitor.wait()``), or that there was nothing to watch."""
        if len(done):
            return done[list(self.WATCHED)]
        return Note(f"Nothing to watch: no export was launched from this notebook; {_AGAIN}")

    def chart(self, plot: Callable[[pd.DataFrame], object], jobs: pd.DataFrame) -> Note | None:
        """Draw ``plot(jobs)`` (a chart of ``ims_nb.charts``; the notebook shows its figure) when some of the jobs
        finished (they have a duration); else return why there is nothing to chart, never empty axes."""
        if jobs["duration_s"].notna().any():
            plot(jobs)
            return None
        if len(jobs):
            return Note(f"Nothing to chart: none of the {len(jobs)} watched export(s) has finished yet.")
        return Note(f"Nothing to chart: no export was launched from this notebook; {_AGAIN}")


def estate_ledger(estate: Estate) -> Ledger:
    """The ledger an estate's exports go to: the one ``ledger_for`` gives its first scope's client (on a simulator
    ``make lab`` runs, the lab's ledger, so 02's exports count), unbound: each row belongs to its own scope."""
    return Ledger(location_for(next(iter(estate.values()))))


class GapExport:
    """The coverage notebook's "export the gap" section: the gap's plan, and its launch and watch.

    Only on a simulator the estate started itself (nbval, CI) is the gap launched, with the simulator's clock run
    forward so the watch takes seconds (``SimulatedTime``). Under ``make lab`` and on a real account the plan is
    shown and nothing is sent: ``launch`` says so and why, as ``Headless`` does.
    """

    LAUNCHED = ("image_name", "bucket_url", "format", "state", "status")

    def __init__(self, estate: Estate, ledger: Ledger, *, bucket_url: str = GAP_TARGET) -> None:
        self._estate, self._ledger, self.bucket_url = estate, ledger, bucket_url
        self.own = estate.owns_simulator
        self._why = why_nothing_is_sent(estate)

    def plan(self, frame: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
        """The plan that closes the gap of ``frame`` (a ``coverage`` frame of ``images``); sends no export."""
        return coverage_gap_plan(frame, images, bucket_url=self.bucket_url, client=self._estate)

    def launch(self, plan: pd.DataFrame) -> pd.DataFrame | Note:
        """Launch the plan's exportable rows and watch them to the end (own simulator only): their final rows;
        else why nothing was sent."""
        if not self.own:
            return Note(f"Nothing exported from this notebook: {self._why}; export the gap with ims-nb coverage "
                        "--export-gap, or with the widgets of 02_export.")  # fmt: skip
        rows = plan[plan["exportable"].fillna(False).astype(bool)]
        if rows.empty:
            return Note("Nothing to export: every exportable image is covered.")
        time = SimulatedTime(next(iter(self._estate.values())), step=60.0)
        # one POST at a time, scope after scope: the simulator numbers (and so fails) jobs in the order they arrive,
        # and a notebook's stored outputs must be what every run gives
        launch_gap(rows, client=self._estate, ledger=self._ledger, concurrency=1, clock=time, sleep=time.sleep)
        for client in self._estate.values():  # one scope after another: one thread moves the clock, as in a replay
            watch(self._ledger, client=client, clock=time, sleep=time.sleep)
        jobs = jobs_frame(self._ledger)
        jobs = jobs[jobs["image_id"].isin(rows["image_id"])].sort_values(["bucket_url", "image_name"])
        return jobs[list(self.LAUNCHED)].reset_index(drop=True)
