"""The notebooks' simulator-only helpers against real simulators: the simulator test, the instant clock, a sample
history, sample picks and the headless section (and that a real account gets none of them)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb import ApiError, ConfigError, ImsClient, SimulatorWarning
from ims_nb.demo import (
    GapExport,
    Headless,
    Note,
    SimulatedTime,
    ensure_history,
    estate_ledger,
    on_simulator,
    sample_picks,  # fmt: skip
    why_nothing_is_sent,
)
from ims_nb.exports.history import jobs_frame
from ims_nb.exports.ledger import Ledger
from ims_nb.selection import exportability
from ims_nb.sim import Simulator
from ims_nb.vocab import DONE, FILE_FORMATS, Coverage, State
from ims_nb.widgets import ExportPanel, ImagePicker, JobMonitor, ViolationsPreview

pytestmark = pytest.mark.usefixtures("clean_env")

#: A small world on a manual clock: quick to start and to export from, and the same on every run.
SMALL_WORLD = {"seed": 0, "images": 40, "manual_clock": True}
HISTORY_EXPORTS = 4
#: A two-region estate of the coverage notebook's kind, small enough to export its whole gap in seconds.
ESTATE_WORLD = {"regions": ["cn-north-4", "ap-southeast-1"], "images": 12, "time_scale": 3600}
TERMINAL = {s.value for s in DONE} | {State.FAILED.value}


def embedded() -> ImsClient:
    """A simulator client with its own embedded ``SMALL_WORLD`` simulator (closing the client stops it)."""
    with pytest.warns(SimulatorWarning):
        return ims_nb.connect(simulator=SMALL_WORLD)


@pytest.fixture()
def small_world() -> Iterator[ImsClient]:
    client = embedded()
    yield client
    client.close()


@pytest.fixture()
def line_client(fresh_sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImsClient]:
    """A simulator client of the reset session simulator, found through ``$IMS_NB_SIM`` (as under ``make lab``)."""
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(fresh_sim.info.as_json_dict()))
    with pytest.warns(SimulatorWarning), ims_nb.connect() as client:
        yield client


def history_of_a_fresh_simulator(ledger_path: Path) -> pd.DataFrame:
    """``ensure_history`` on a new embedded simulator into a new ledger; the ledger's jobs frame after it."""
    with embedded() as client, Ledger(ledger_path) as ledger:
        said = ensure_history(client, ledger, exports=HISTORY_EXPORTS)
        assert said.startswith("exported ") and said.endswith("finished exports"), said
        return jobs_frame(ledger)


# --- on_simulator ---------------------------------------------------------------------------------


def test_on_simulator_is_true_only_for_a_client_flagged_as_simulator(
    line_client: ImsClient, sim_client: ImsClient
) -> None:
    assert on_simulator(line_client)
    assert not on_simulator(sim_client)  # the simulator's endpoint, but explicit keys: treated as a real account
    assert not on_simulator(None) and not on_simulator(object())


# --- SimulatedTime --------------------------------------------------------------------------------


def test_simulated_time_moves_the_simulators_clock_in_steps_and_never_waits(
    line_client: ImsClient, control: httpx.Client
) -> None:
    def simulator_now() -> float:
        return float(control.get("/clock").json()["timestamp"])

    start = simulator_now()
    clock = SimulatedTime(line_client, step=1.0)
    for seconds in (0.4, 0.4, 0.0, -3.0):
        clock.sleep(seconds)
    assert clock() == pytest.approx(0.8)
    assert simulator_now() == start  # sleeps shorter than a step are gathered, not sent
    clock.sleep(0.4)
    assert clock() == pytest.approx(1.2)
    assert simulator_now() == pytest.approx(start + 1.2)  # the whole debt moves at once
    began = time.monotonic()
    clock.sleep(3600.0)
    assert time.monotonic() - began < 2.0
    assert clock() == pytest.approx(3601.2)
    assert simulator_now() == pytest.approx(start + 3601.2)


def test_simulated_time_refuses_a_client_of_a_real_account_before_sending(sim_client: ImsClient) -> None:
    with pytest.raises(ConfigError, match="only a simulator has a clock"):
        SimulatedTime(sim_client, step=1.0).sleep(5.0)


# --- ensure_history -------------------------------------------------------------------------------


def test_ensure_history_fills_the_ledger_with_finished_exports_in_every_format_once(tmp_path: Path) -> None:
    with embedded() as client, Ledger(tmp_path / "ledger.sqlite") as ledger:
        said = ensure_history(client, ledger, exports=HISTORY_EXPORTS)
        jobs = jobs_frame(ledger)
        finished = jobs[jobs["duration_s"].notna()]
        assert len(finished) >= HISTORY_EXPORTS and (finished["duration_s"] > 0).all()
        assert f"now holds {len(finished)} finished exports" in said
        assert set(FILE_FORMATS) <= set(jobs["format"])  # and zvhd2 for an image that needs fast export
        assert set(jobs["state"]) <= TERMINAL  # the clock was run until every job ended
        assert jobs["bucket_url"].str.startswith("ims-exports-cn-north-4:history/").all()
        rows = len(ledger.rows())

        again = ensure_history(client, ledger, exports=HISTORY_EXPORTS)
        assert again == f"the ledger already holds {len(finished)} finished exports"
        assert len(ledger.rows()) == rows
        assert client.exports_in_progress() == {}


def test_ensure_history_gives_the_same_durations_on_two_fresh_simulators(tmp_path: Path) -> None:
    first = history_of_a_fresh_simulator(tmp_path / "first.sqlite")
    second = history_of_a_fresh_simulator(tmp_path / "second.sqlite")
    columns = ["image_id", "format", "state", "duration_s"]
    pd.testing.assert_frame_equal(first[columns], second[columns])


def test_ensure_history_launches_nothing_for_a_real_account(sim_client: ImsClient, sent: Any, tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        said = ensure_history(sim_client, ledger, exports=HISTORY_EXPORTS)
        assert "real account" in said and "nothing was launched" in said and "0 finished" in said
        assert ledger.rows() == []
    assert len(sent) == 0


def test_ensure_history_on_a_simulator_without_a_usable_bucket_says_so(
    fresh_sim: Simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a simulator that claims eu-west-0: every bucket of its world is in cn-north-4 or ap-southeast-1
    line = dict(fresh_sim.info.as_json_dict(), region="eu-west-0")
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(line))
    with pytest.warns(SimulatorWarning), ims_nb.connect() as client, Ledger(tmp_path / "ledger.sqlite") as ledger:
        assert ensure_history(client, ledger) == "the simulator has no usable bucket; nothing was launched"
        assert ledger.rows() == []
        assert client.exports_in_progress() == {}


# --- sample_picks ---------------------------------------------------------------------------------


def test_sample_picks_two_smallest_exportable_images_and_one_refused_private_one(small_world: ImsClient) -> None:
    images = small_world.images()
    picks = sample_picks(images, small_world)
    assert len(picks) == 3 and len(set(picks)) == 3

    ok = exportability(images, client=small_world)
    smallest = images[ok].sort_values(["size_bytes", "id"])["id"].head(2).tolist()
    assert picks[:2] == smallest
    refused = images.set_index("id").loc[picks[2]]
    assert not ok[images["id"] == picks[2]].any() and refused["image_type"] == "private"

    # and the simulator agrees: it starts the first two and refuses the third
    for image_id in picks[:2]:
        assert small_world.export_image(image_id, f"ims-exports-cn-north-4:picks/{image_id}.qcow2", "qcow2")
    with pytest.raises(ApiError) as refusal:
        small_world.export_image(picks[2], f"ims-exports-cn-north-4:picks/{picks[2]}.qcow2", "qcow2")
    assert refusal.value.code.startswith("IMG.")


def test_sample_picks_puts_private_refusals_before_public_ones(small_world: ImsClient) -> None:
    images = small_world.images()
    refusals = int((~exportability(images, client=small_world)).sum())
    picks = sample_picks(images, small_world, good=0, refused=refusals)
    kinds = images.set_index("id").loc[picks, "image_type"].tolist()
    assert len(picks) == refusals and "private" in kinds and len(set(kinds)) > 1
    assert kinds == sorted(kinds, key=lambda kind: kind != "private")


def test_sample_picks_picks_nothing_for_a_real_account(sim_client: ImsClient) -> None:
    images = sim_client.images()
    assert len(images) > 0
    assert sample_picks(images, sim_client) == []


# --- Headless -------------------------------------------------------------------------------------


@pytest.fixture()
def lab_ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        yield ledger


def notebook_widgets(
    client: ImsClient, ledger: Ledger, *, monitor: bool = True
) -> tuple[ImagePicker, ExportPanel, Headless]:
    """The 02 notebook's widgets and its headless section, as its cells build them (the monitor optional: without
    a running loop a launch cannot start it)."""
    picker = ImagePicker(client)
    panel = ExportPanel(client, ledger, picker=picker, monitor=JobMonitor(client, ledger) if monitor else None)
    return picker, panel, Headless(client, picker=picker, panel=panel, preview=ViolationsPreview(panel))


def one_sentence(said: object) -> str:
    assert isinstance(said, Note) and repr(said) == str(said), said  # shown as is, never as an empty table
    text = str(said)
    assert text.endswith(".") and ". " not in text and "\n" not in text, text
    return text


def test_headless_on_an_outside_simulator_sends_nothing_and_says_so_in_one_sentence_a_cell(
    line_client: ImsClient, lab_ledger: Ledger, control: httpx.Client
) -> None:
    picker, panel, headless = notebook_widgets(line_client, lab_ledger)
    assert headless.picks == []
    cells = [headless.pick(), headless.ask(), headless.launch()]
    done = jobs_frame(lab_ledger)
    cells += [headless.watched(done), headless.chart(pytest.fail, done)]  # no chart is drawn
    said = [one_sentence(cell) for cell in cells]
    steps = ["picked headlessly", "asked headlessly", "launched headlessly", "to watch", "to chart"]
    assert [s.split(":")[0] for s in said] == [f"Nothing {step}" for step in steps]
    assert all("make lab" in s and "nothing you did not pick" in s for s in said[:3])
    assert all("above" in s for s in said)
    assert picker.picked == [] and panel.launched is None
    assert len(jobs_frame(lab_ledger)) == 0 and control.get("/state").json()["jobs"] == []


def test_headless_shows_the_batch_the_user_picked_and_launched_with_the_buttons(
    line_client: ImsClient, lab_ledger: Ledger
) -> None:
    picker, panel, headless = notebook_widgets(line_client, lab_ledger, monitor=False)
    ok = exportability(picker.frame, client=line_client)
    mine = picker.frame[ok.to_numpy()].sort_values("id")["id"].head(2).tolist()
    picker.pick(*mine)  # by hand, then Confirm
    launched = panel.launch()
    verdicts = headless.pick()
    assert isinstance(verdicts, pd.DataFrame) and list(verdicts.columns) == list(Headless.PICKED)
    assert len(verdicts) == 2 and picker.picked == mine  # nothing added to the user's picks
    shown = headless.launch()
    assert isinstance(shown, pd.DataFrame) and shown["image_name"].tolist() == launched["image_name"].tolist()
    watched = headless.watched(jobs_frame(lab_ledger))
    assert isinstance(watched, pd.DataFrame) and len(watched) == 2
    assert one_sentence(headless.chart(pytest.fail, jobs_frame(lab_ledger))).startswith(
        "Nothing to chart: none of the 2 watched export(s) has finished yet"
    )
    assert one_sentence(headless.ask()).startswith("Nothing asked headlessly")  # Launch above asks, not this cell


def test_headless_charts_finished_exports(line_client: ImsClient, lab_ledger: Ledger) -> None:
    _, _, headless = notebook_widgets(line_client, lab_ledger)
    drawn: list[pd.DataFrame] = []
    jobs = pd.DataFrame({"duration_s": [None, 12.0]})
    assert headless.chart(drawn.append, jobs) is None and drawn == [jobs]


def test_headless_on_a_real_account_says_why_nothing_is_sent(sim_client: ImsClient) -> None:
    assert why_nothing_is_sent(sim_client).startswith("this kernel is on a real account")


# --- the coverage notebook's gap ----------------------------------------------------------------


def test_gap_export_on_the_estates_own_simulator_closes_the_gap(tmp_path: Path) -> None:
    with pytest.warns(SimulatorWarning), ims_nb.connect_estate(simulator=ESTATE_WORLD) as estate:
        ledger = estate_ledger(estate)
        assert ledger.path.parent == Path(tempfile.gettempdir())
        images = estate.images()
        before = ims_nb.coverage(images, ledger, estate)
        gap = GapExport(estate, ledger)
        plan = gap.plan(before, images)
        assert gap.own and set(plan["region"]) == set(ESTATE_WORLD["regions"])

        launched = gap.launch(plan)

        assert isinstance(launched, pd.DataFrame) and len(launched) == int(plan["exportable"].sum()) > 0
        assert set(launched["state"]) <= TERMINAL
        assert all(url.startswith("ims-exports-") and ":gap/" in url for url in launched["bucket_url"])
        after = ims_nb.coverage(images, ledger, estate)
        closed = after[after["id"].isin(plan["image_id"])]
        assert Coverage.COVERED in set(closed["status"]) and Coverage.NEVER not in set(closed["status"])
        assert isinstance(gap.launch(gap.plan(after, images).head(0)), Note)


def test_gap_export_on_an_outside_simulator_plans_but_sends_nothing(fresh_sim: Simulator, tmp_path: Path) -> None:
    with ims_nb.connect_estate(simulator=fresh_sim) as estate, Ledger(tmp_path / "l.db") as ledger:
        images = estate.images()
        gap = GapExport(estate, ledger)
        plan = gap.plan(ims_nb.coverage(images, ledger, estate), images)

        said = gap.launch(plan)

        assert not gap.own and len(plan) and not ledger.rows()
    assert isinstance(said, Note) and repr(said).startswith("Nothing exported from this notebook: this kernel uses")


def test_why_nothing_is_sent_knows_a_real_estate() -> None:
    assert why_nothing_is_sent(SimpleNamespace(is_simulator=False)).startswith("this kernel is on a real account")
