"""``JobMonitor``: progress bars of a launched batch, driven by an asyncio task against the simulator's manual clock."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb.client import ImsClient
from ims_nb.client.pacing import Pacing, clock_speed
from ims_nb.errors import ConfigError, SimulatorWarning
from ims_nb.exports.history import HISTORY_COLUMNS, EtaModel
from ims_nb.exports.identity import identity_of
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.sim.jobs import plan_job
from ims_nb.vocab import LIVE, State, Target
from ims_nb.widgets.log import LogPanel
from ims_nb.widgets.monitor import EVERYONE, JobMonitor, clock_note, human_eta
from tests.helpers import BUCKET, stall_job

GiB = 1024**3
#: Polling coarse enough that hours of simulated time take a few hundred requests.
COARSE = Pacing(interval=300.0, max_interval=1800.0, stall_after=7200.0)
#: Polling fine enough that a job is seen several times while it runs (its own pace gives an ETA).
FINE = Pacing(interval=30.0, max_interval=60.0, stall_after=7200.0)
Bar = tuple[str, float, str, str]  # image name, value, bar style, status text


def failing_sequences(upto: int) -> list[int]:
    """The job sequence numbers that fail part-way in the simulator's world of seed 0."""
    image = {"id": "x", "name": "x", "__image_size": GiB}
    return [n for n in range(1, upto + 1)
            if plan_job(seed=0, sequence=n, image=image, bucket=BUCKET, key="k", file_format="qcow2", quick=False,
                        now=0.0).fail_code]  # fmt: skip


def bars(monitor: JobMonitor) -> list[Bar]:
    """What the monitor shows, one tuple per row, read from its widget tree as a user sees it."""
    rows = monitor.children[1].children
    return [(name.value, bar.value, bar.bar_style, text.value) for name, bar, text, _who in (r.children for r in rows)]


def stop_button(monitor: JobMonitor) -> Any:
    return monitor.children[0].children[1]


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()} - {"ims-nb-simulator"}


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Let other tasks run (in real time) until ``condition`` holds."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.001)


def sampling(sleep: Callable[[float], Awaitable[None]], sample: Callable[[], None]) -> Callable[[float], Any]:
    """A sleep for the watch that first samples the monitor (between polls) and lets other tasks run."""

    async def sleep_and_sample(seconds: float) -> None:
        sample()
        await sleep(seconds)
        await asyncio.sleep(0)

    return sleep_and_sample


@pytest.fixture()
def watcher(connect_sim: Callable[..., ImsClient]) -> ImsClient:
    """The monitor's client: ``to_async()`` needs the default transport (``connect_sim`` records synchronously)."""
    return connect_sim(transport=None)


def monitor_of(watcher: Any, ledger: Ledger, sim_time: Any, **options: Any) -> JobMonitor:
    arguments: dict[str, Any] = {"pacing": COARSE, "clock": sim_time, "sleep": sim_time.async_sleep}
    return JobMonitor(watcher, ledger, **(arguments | options))


# --- to the end ---------------------------------------------------------------------------------


def test_bars_follow_a_launched_batch_to_the_end(
    rows: pd.DataFrame, client: ImsClient, watcher: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    count = failing_sequences(len(rows))[1]  # seed 0: the batch holds two jobs that fail part-way
    launched = launch(rows.head(count), client=client, ledger=ledger, max_rate=1000)
    monitor = monitor_of(watcher, ledger, sim_time).follow(launched)
    assert [b[:3] for b in bars(monitor)] == [(name, 0.0, "info") for name in launched["image_name"]]
    assert all("submitted" in text for *_, text in bars(monitor))

    frame = asyncio.run(monitor.wait())

    assert list(frame.columns) == list(HISTORY_COLUMNS)
    assert list(frame["row_id"]) == list(launched["row_id"])
    assert not ledger.rows(LIVE) and monitor.log_panel.errors == []
    by_state = {State.VERIFIED: 0, State.FAILED: 0}
    for row, (name, value, style, text) in zip(ledger.rows(), bars(monitor), strict=True):
        by_state[row["state"]] += 1
        assert name == row["image_name"]
        if row["state"] == State.VERIFIED:
            assert (value, style) == (100.0, "success")
            assert text == "SUCCESS 100 % · verified"
        else:
            assert (value, style) == (row["process_percent"], "danger") and value < 100.0
            assert text.startswith(f"FAIL {row['process_percent']:.0f} % · failed · {row['error_code']}: ")
            assert row["error_code"].startswith("IMG.") and row["fail_reason"] in text
    assert by_state == {State.VERIFIED: count - 2, State.FAILED: 2}
    assert repr(monitor) == f"JobMonitor({count} exports: {count - 2} verified, 2 failed)"
    assert not monitor.running and stop_button(monitor).disabled
    assert sim_time.now > 0  # simulated time passed, real time did not


def test_rows_already_finished_show_their_final_state_at_once(
    rows: pd.DataFrame, client: ImsClient, watcher: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    launched = launch(rows.head(3), client=client, ledger=ledger, max_rate=1000)
    asyncio.run(monitor_of(watcher, ledger, sim_time).wait())

    again = monitor_of(watcher, ledger, sim_time).follow(list(launched["row_id"]))

    assert [b[1:] for b in bars(again)] == [(100.0, "success", "SUCCESS 100 % · verified")] * 3
    assert repr(again) == "JobMonitor(3 exports: 3 verified)"
    assert repr(monitor_of(watcher, ledger, sim_time)) == "JobMonitor(no exports)"  # nothing live any more


def test_eta_shows_while_jobs_run_and_goes_when_they_end(
    rows: pd.DataFrame, client: ImsClient, watcher: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    launched = launch(rows.head(3), client=client, ledger=ledger, max_rate=1000)
    samples: list[list[Bar]] = []
    monitor = monitor_of(watcher, ledger, sim_time, pacing=FINE,
                         sleep=sampling(sim_time.async_sleep, lambda: samples.append(bars(monitor))))  # fmt: skip

    asyncio.run(monitor.follow(launched).wait())

    running = [b for sample in samples for b in sample if " · running" in b[3]]
    assert running and all(b[2] == "info" and 0.0 <= b[1] < 100.0 for b in running)
    with_eta = [b[3] for b in running if "ETA " in b[3]]
    assert with_eta and all(t.startswith("RUNNING ") for t in with_eta)
    assert all("ETA" not in b[3] for b in bars(monitor))


def test_a_job_whose_progress_stands_still_is_flagged_stalled(
    rows: pd.DataFrame, client: ImsClient, watcher: ImsClient, ledger: Ledger, control: httpx.Client, sim_time: Any
) -> None:
    (job_id,) = launch(rows.head(1), client=client, ledger=ledger, max_rate=1000)["job_id"]
    stall_job(control, job_id)
    texts: list[str] = []
    aclient = watcher.to_async()  # an AsyncImsClient is used as is, and left open

    async def main() -> tuple[dict[str, Any], Bar]:
        sleep = sampling(sim_time.async_sleep, lambda: texts.append(bars(monitor)[0][3]))
        monitor = monitor_of(aclient, ledger, sim_time, pacing=Pacing(5.0, 60.0, 100.0), sleep=sleep)
        await monitor.wait()
        try:
            return await aclient.job_progress(job_id), bars(monitor)[0]
        finally:
            await aclient.aclose()

    record, final = asyncio.run(main())

    assert record["status"] == "SUCCESS"
    stalled = [t for t in texts if "stalled" in t]
    assert stalled and all(t.startswith("RUNNING 42 % · running") for t in stalled)
    assert not texts[0].endswith("stalled</b>")  # not before stall_after passed
    assert final[1:] == (100.0, "success", "SUCCESS 100 % · verified")


# --- following --------------------------------------------------------------------------------------


def test_rows_given_explicitly_are_all_that_is_shown(
    rows: pd.DataFrame, client: ImsClient, watcher: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    first = launch(rows.head(2), client=client, ledger=ledger, max_rate=1000)
    monitor = monitor_of(watcher, ledger, sim_time).follow(first)
    everything = monitor_of(watcher, ledger, sim_time)  # the live rows, and any that report later
    launch(rows.iloc[2:3], client=client, ledger=ledger, max_rate=1000)

    frame = asyncio.run(monitor.wait())

    assert list(frame["row_id"]) == list(first["row_id"])
    assert len(bars(monitor)) == 2 and not ledger.rows(LIVE)  # the watch recorded the third row too
    asyncio.run(everything.wait())
    assert len(bars(everything)) == 2  # nothing was live when it watched: the third row reported no progress

    everything = monitor_of(watcher, ledger, sim_time)  # no live rows: no bars, until a launch reports
    late = launch(rows.iloc[3:4], client=client, ledger=ledger, max_rate=1000)
    assert bars(everything) == []
    frame = asyncio.run(everything.wait())
    assert list(frame["row_id"]) == list(late["row_id"]) and bars(everything)[0][2] == "success"


@pytest.mark.parametrize("bad", [pd.DataFrame({"image_id": ["x"]}), ["one"], [None]])
def test_follow_refuses_what_is_not_a_batch(watcher: ImsClient, ledger: Ledger, sim_time: Any, bad: Any) -> None:
    with pytest.raises(ConfigError, match="follow"):
        monitor_of(watcher, ledger, sim_time).follow(bad)


# --- stopping, errors, the loop ---------------------------------------------------------------------


def test_stop_cancels_the_watch_and_the_exports_go_on(
    rows: pd.DataFrame, client: ImsClient, watcher: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    launched = launch(rows.head(3), client=client, ledger=ledger, max_rate=1000)
    # the simulator's pacing, read when the watch starts
    monitor = JobMonitor(watcher, ledger, clock=sim_time, sleep=sampling(sim_time.async_sleep, lambda: None))
    before = bars(monitor)

    async def main() -> pd.DataFrame:
        task = monitor.start()
        assert monitor.start() is task and monitor.running and not stop_button(monitor).disabled
        await until(lambda: bars(monitor) != before)
        stop_button(monitor).click()
        await task
        assert not monitor.running and stop_button(monitor).disabled
        assert len(ledger.rows(LIVE)) == 3
        return await monitor.wait()  # starts again, to the end

    frame = asyncio.run(main())

    assert monitor.log_panel.errors == []
    assert any("3 export(s) go on in the cloud" in e.text for e in monitor.log_panel.entries)
    assert list(frame["row_id"]) == list(launched["row_id"]) and set(frame["state"]) == {"verified"}


def test_stop_before_the_task_ran_and_when_idle_is_harmless(watcher: ImsClient, ledger: Ledger, sim_time: Any) -> None:
    monitor = monitor_of(watcher, ledger, sim_time)
    monitor.stop()  # not running: nothing to do

    async def main() -> pd.DataFrame:
        monitor.start()
        monitor.stop()
        return await monitor.wait()

    assert len(asyncio.run(main())) == 0
    assert not monitor.running and monitor.log_panel.errors == []


@pytest.mark.parametrize(
    ("case", "message"),
    [("refused-credentials", "APIGW."), ("timeout", "2 job(s) still running after 60 s"),
     ("broken-ledger", "ProgrammingError")],
)  # fmt: skip
def test_an_error_in_the_task_lands_in_the_log_and_the_monitor_stays_usable(
    rows: pd.DataFrame,
    client: ImsClient,
    watcher: ImsClient,
    ledger: Ledger,
    sim_time: Any,
    connect_sim: Callable[..., ImsClient],
    case: str,
    message: str,
) -> None:
    launch(rows.head(2), client=client, ledger=ledger, max_rate=1000)
    if case == "refused-credentials":
        watcher = connect_sim(sk="wrong-secret-key-0123456789", transport=None)
    monitor = monitor_of(watcher, ledger, sim_time, pacing=FINE, timeout=60.0 if case == "timeout" else None)
    if case == "broken-ledger":
        ledger.close()

    async def main() -> None:
        await monitor.start()  # nothing raises
        assert not monitor.running and stop_button(monitor).disabled
        await monitor.start()  # it can start again (and fails the same way)

    asyncio.run(main())

    watching = [e for e in monitor.log_panel.errors if e.startswith("watching exports failed: ")]
    assert len(watching) == 2 and message in watching[0]
    assert "wrong-secret-key" not in " ".join(monitor.log_panel.errors)
    assert not monitor.running and stop_button(monitor).disabled


def test_start_without_a_running_loop_says_how_to_run_it(watcher: ImsClient, ledger: Ledger) -> None:
    monitor = JobMonitor(watcher, ledger)

    with pytest.raises(ConfigError, match=r"running asyncio loop.*await monitor\.wait\(\)"):
        monitor.start()

    assert not monitor.running and stop_button(monitor).disabled


def test_the_monitor_starts_no_thread(
    rows: pd.DataFrame, client: ImsClient, watcher: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    launch(rows.head(3), client=client, ledger=ledger, max_rate=1000)
    seen: list[set[str]] = []
    sleep = sampling(sim_time.async_sleep, lambda: seen.append(thread_names()))
    monitor = monitor_of(watcher, ledger, sim_time, pacing=FINE, sleep=sleep)

    async def main() -> set[str]:
        before = thread_names()
        await monitor.wait()
        seen.append(thread_names())
        return before

    before = asyncio.run(main())

    assert len(seen) > 3 and all(names == before for names in seen)
    assert not ledger.rows(LIVE)


# --- the view ---------------------------------------------------------------------------------------


def test_the_widget_tree_and_a_stable_repr(
    rows: pd.DataFrame, client: ImsClient, watcher: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    launched = launch(rows.head(2), client=client, ledger=ledger, max_rate=1000)
    monitor = monitor_of(watcher, ledger, sim_time)

    assert isinstance(monitor.log_panel, LogPanel) and monitor.children[-1] is monitor.log_panel
    assert repr(monitor) == "JobMonitor(2 exports: 2 submitted)" == repr(monitor.follow(launched))
    assert monitor.children[0].children[0].value.startswith("<b>2 exports: 2 submitted</b> · updated ")
    asyncio.run(monitor.wait())
    assert repr(monitor) == "JobMonitor(2 exports: 2 verified)"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(20, "ETA < 1 min"), (720, "ETA 12 min"), (2 * 3600 + 300, "ETA 2 h 05 min"), (76 * 3600, "ETA 3 d 4 h")],
)
def test_human_eta(seconds: float, text: str) -> None:
    assert human_eta(seconds) == text


# --- ETAs in real time --------------------------------------------------------------------------


def test_clock_note_says_the_simulator_clocks_speed() -> None:
    assert clock_note(600.0) == "simulator clock ×600: ETAs in real time"
    assert clock_note(None) == "simulator clock manual or unread: ETAs in simulated time"


def test_the_history_eta_is_divided_by_the_clocks_speed_and_the_own_pace_is_not() -> None:
    history = pd.DataFrame({"state": ["verified"], "format": ["qcow2"], "size_gb": [10.0], "duration_s": [600.0]})
    service, fast = EtaModel(history), EtaModel(history, speed=600.0)
    assert service.eta(file_format="qcow2", size_gb=10.0, percent=50.0, elapsed=None) == pytest.approx(300.0)
    assert fast.eta(file_format="qcow2", size_gb=10.0, percent=50.0, elapsed=None) == pytest.approx(0.5)
    # a job's own pace is measured on the watch's (real) clock: no conversion
    assert fast.eta(file_format="vmdk", size_gb=10.0, percent=25.0, elapsed=60.0) == pytest.approx(180.0)


def test_on_a_simulator_at_600x_the_header_says_etas_are_in_real_time(tmp_path: Any) -> None:
    with pytest.warns(SimulatorWarning), ims_nb.connect(simulator={"images": 5, "time_scale": 600}) as client:
        assert clock_speed(client) == 600.0
        monitor = JobMonitor(client, Ledger(tmp_path / "ledger.sqlite"))
        assert "ETAs" not in monitor.children[0].children[0].value  # the clock is read when a watch starts
        asyncio.run(monitor.wait())
    assert " · simulator clock ×600: ETAs in real time · updated " in monitor.children[0].children[0].value


def test_on_an_account_the_header_says_nothing_of_clocks(
    watcher: ImsClient, ledger: Ledger, sim_time: Any, rows: pd.DataFrame, client: ImsClient
) -> None:
    monitor = monitor_of(watcher, ledger, sim_time)
    asyncio.run(monitor.wait())
    assert clock_speed(watcher) == 1.0 and "clock" not in monitor.children[0].children[0].value


# --- who launched what (issue 15, item 4) -------------------------------------------------------


def test_rows_show_who_launched_them_and_launched_by_filters_them(
    watcher: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    account = identity_of(watcher)
    assert account is not None
    for n, (user, host) in enumerate([("ann", "hub-1"), ("bo", "hub-2"), ("ann", "hub-2"), (None, "hub-1")]):
        ledger.bound_to(replace(account, user=user, host=host)).claim(
            image_id=f"img-{n}", target=Target(BUCKET, f"who/{n}.qcow2"), image_name=f"name-{n}", file_format="qcow2",
            quick=False, size_bytes=GiB, region=account.region)  # fmt: skip
    monitor = monitor_of(watcher, ledger, sim_time)
    launcher = monitor.children[0].children[2]
    who = [row.children[3].value for row in monitor.children[1].children]
    assert who == ["ann @ hub-1", "bo @ hub-2", "ann @ hub-2", f"{account.principal} @ hub-1"]
    assert (launcher.description, list(launcher.options), launcher.value) == ("launched by", [EVERYONE, "ann", "bo"],
                                                                              EVERYONE)  # fmt: skip

    launcher.value = "ann"
    assert [b[0] for b in bars(monitor)] == ["name-0", "name-2"]
    launcher.value = "bo"
    assert [b[0] for b in bars(monitor)] == ["name-1"]
    launcher.value = EVERYONE
    assert [b[0] for b in bars(monitor)] == ["name-0", "name-1", "name-2", "name-3"]
    assert monitor.log_panel.errors == []
