"""Watching export jobs on the simulator's manual clock: progress, verification, failures, stalls, ETAs, resuming."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from ims_nb.client import ImsClient
from ims_nb.client.polling import PollPlan
from ims_nb.errors import ConfigError, WaitTimeoutError
from ims_nb.exports.history import HISTORY_COLUMNS, EtaModel, jobs_frame, size_band
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import Progress, watch
from ims_nb.frames import JOB_COLUMNS
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim.jobs import plan_job
from ims_nb.vocab import LIVE, State
from tests.helpers import BUCKET, stall_job

GiB = 1024**3
#: Polling coarse enough that hours of simulated time take a few hundred requests.
COARSE: dict[str, Any] = {"interval": 300.0, "max_interval": 1800.0, "max_rate": 1000.0}


def sim_jobs(control: httpx.Client) -> dict[str, dict[str, Any]]:
    return {job["job_id"]: job for job in control.get("/state").json()["jobs"]}


def first_failing_sequences(seed: int, upto: int) -> list[int]:
    image = {"id": "x", "name": "x", "__image_size": GiB}
    return [n for n in range(1, upto + 1)
            if plan_job(seed=seed, sequence=n, image=image, bucket=BUCKET, key="k", file_format="qcow2", quick=False,
                        now=0.0).fail_code]  # fmt: skip


def run(ledger: Ledger, client: ImsClient, sim_time: Any, **options: Any) -> pd.DataFrame:
    return watch(ledger, client=client, clock=sim_time, sleep=sim_time.sleep, **(COARSE | options))


# --- to the end ---------------------------------------------------------------------------------


def test_watch_follows_every_job_to_the_end_and_verifies_each_object(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, control: httpx.Client, sim_time: Any
) -> None:
    launch(rows.head(8), client=client, ledger=ledger, max_rate=1000)  # seed 0: job sequences 1-8 succeed

    frame = run(ledger, client, sim_time)

    assert not ledger.rows(LIVE)
    truth = sim_jobs(control)
    for row in ledger.rows():
        job = truth[row["job_id"]]
        assert job["status"] == "SUCCESS"
        assert row["state"] == State.VERIFIED and row["status"] == "SUCCESS"
        assert row["process_percent"] == 100.0
        assert (row["begin_time"], row["end_time"]) == (job["begin_time"], job["end_time"])
        key = row["bucket_url"].partition(":")[2]
        assert row["object_size"] == client.object_size(BUCKET, key)
        assert row["object_size"] > 0
        assert row["object_size"] <= (row["size_bytes"] or 0) * 1.2
    assert list(frame["state"]) == ["verified"] * 8
    assert sim_time.now > 0  # simulated time passed, real time did not


def test_a_success_whose_object_is_missing_is_recorded_as_missing(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, sim_time: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    launch(rows.head(3), client=client, ledger=ledger, max_rate=1000)
    gone = rows["bucket_url"].iloc[1].partition(":")[2]
    # The simulator derives a job's object from the job itself (SUCCESS means the object exists), so nothing
    # can delete it there. A HEAD that answers 404 for one key stands in for an object removed between the
    # job's end and the check (a lifecycle rule, someone's delete, a wrong bucket policy).
    real = client.object_size
    monkeypatch.setattr(client, "object_size", lambda bucket, key: None if key == gone else real(bucket, key))

    run(ledger, client, sim_time)

    states = {r["bucket_url"].partition(":")[2]: r for r in ledger.rows()}
    assert states[gone]["state"] == State.MISSING and states[gone]["status"] == "SUCCESS"
    assert states[gone]["object_size"] is None
    assert f"the object {gone} is missing" in states[gone]["note"]
    assert sorted(r["state"] for r in states.values()) == ["missing", "verified", "verified"]


def test_failed_jobs_are_recorded_with_the_service_code_and_reason(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, control: httpx.Client, sim_time: Any
) -> None:
    failing = first_failing_sequences(0, len(rows))
    count = failing[1]  # seed 0: the batch holds two jobs that fail part-way
    launch(rows.head(count), client=client, ledger=ledger, max_rate=1000)

    frame = run(ledger, client, sim_time)

    truth = sim_jobs(control)
    failed = [r for r in ledger.rows() if r["state"] == State.FAILED]
    assert len(failed) == 2
    for row in failed:
        job = truth[row["job_id"]]
        assert job["status"] == "FAIL" and row["status"] == "FAIL"
        assert row["error_code"] == job["error_code"] and row["error_code"].startswith("IMG.")
        assert row["fail_reason"] == job["fail_reason"] and row["fail_reason"]
        assert row["end_time"] == job["end_time"] and row["object_size"] is None
    assert sorted(frame.loc[frame["state"] == "failed", "job_id"]) == sorted(r["job_id"] for r in failed)
    assert (frame.loc[frame["state"] == "verified", "error_code"].isna()).all()


def test_a_job_the_service_does_not_know_is_failed_with_its_code(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    launched = launch(rows.head(1), client=client, ledger=ledger, max_rate=1000)
    ledger.update(int(launched["row_id"].iloc[0]), job_id="ff808082000000000000000000000000")

    run(ledger, client, sim_time)

    (row,) = ledger.rows()
    assert (row["state"], row["error_code"]) == ("failed", "IMG.0086")


def test_a_server_error_on_a_poll_is_retried_later_not_a_failure(
    rows: pd.DataFrame,
    connect_sim: Callable[..., ImsClient],
    ledger: Ledger,
    control: httpx.Client,
    sim_time: Any,
) -> None:
    from ims_nb.client.retry import RetryPolicy

    client = connect_sim(retry=RetryPolicy(max_attempts=1))
    launch(rows.head(2), client=client, ledger=ledger, max_rate=1000)
    control.post("/faults", json={"kind": "response", "method": "GET", "path": "/cloudimages/job/", "status": 503,
                                  "count": 3})  # fmt: skip

    run(ledger, client, sim_time)

    assert [r["state"] for r in ledger.rows()] == ["verified", "verified"]


# --- stalls and ETAs ----------------------------------------------------------------------------


def test_a_job_whose_progress_stands_still_is_reported_stalled(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, control: httpx.Client, sim_time: Any
) -> None:
    (job_id,) = launch(rows.head(1), client=client, ledger=ledger, max_rate=1000)["job_id"]
    # the service answers "RUNNING, 42 %" to the next polls: a job stuck at 42 %
    stall_job(control, job_id)
    seen: list[tuple[float, Progress]] = []

    run(ledger, client, sim_time, interval=5.0, max_interval=60.0, stall_after=100.0,
        on_progress=lambda p: seen.append((sim_time.now, p)))  # fmt: skip

    stuck_reports = [(t, p) for t, p in seen if p.percent == 42.0]
    assert len(stuck_reports) == 8
    assert [p.stalled for t, p in stuck_reports] == [t - stuck_reports[0][0] >= 100.0 for t, _ in stuck_reports]
    assert any(p.stalled for _, p in stuck_reports) and not stuck_reports[0][1].stalled
    after = [p for _, p in seen[8:]]
    assert after and not any(p.stalled for p in after)  # it moved again
    assert after[-1].state == "verified" and after[-1].job_id == job_id


def test_a_long_queue_with_no_progress_counts_as_a_stall_too(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    launch(rows.head(3), client=client, ledger=ledger, max_rate=1000)
    seen: list[Progress] = []

    run(ledger, client, sim_time, interval=5.0, max_interval=10.0, stall_after=10.0, on_progress=seen.append)

    # each job waits 15-240 s in the queue at 0 %: longer than stall_after
    assert any(p.stalled and p.percent == 0.0 for p in seen)
    assert not any(p.stalled for p in seen if p.state == "verified")


def history(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    """A jobs_frame-like history: (state, format, size_gb, duration_s) per job."""
    return pd.DataFrame(rows, columns=["state", "format", "size_gb", "duration_s"])


def test_the_eta_model_takes_the_median_rate_per_format_and_size_band() -> None:
    model = EtaModel(
        history([
            ("verified", "qcow2", 10.0, 100.0),  # 0.1 GiB/s
            ("verified", "qcow2", 12.0, 60.0),  # 0.2
            ("succeeded", "qcow2", 8.0, 20.0),  # 0.4
            ("failed", "qcow2", 10.0, 1.0),  # failures say nothing about speed
            ("verified", "qcow2", 100.0, 1000.0),  # another band: 0.1
            ("verified", "zvhd2", 10.0, 10.0),  # another format: 1.0
            ("verified", "qcow2", 10.0, 0.0),  # no duration
        ])
    )  # fmt: skip

    assert model.rates == {("qcow2", size_band(10.0)): 0.2, ("qcow2", size_band(100.0)): 0.1, ("zvhd2", 0): 1.0}
    assert model.eta(file_format="qcow2", size_gb=10.0, percent=0.0, elapsed=None) == pytest.approx(50.0)
    assert model.eta(file_format="qcow2", size_gb=10.0, percent=50.0, elapsed=None) == pytest.approx(25.0)
    assert model.eta(file_format="qcow2", size_gb=100.0, percent=None, elapsed=None) == pytest.approx(1000.0)
    assert model.eta(file_format="zvhd2", size_gb=4.0, percent=100.0, elapsed=5.0) == 0.0


def test_without_history_the_eta_comes_from_the_jobs_own_pace() -> None:
    model = EtaModel(history([]))

    assert model.eta(file_format="vmdk", size_gb=10.0, percent=None, elapsed=None) is None
    assert model.eta(file_format="vmdk", size_gb=10.0, percent=0.0, elapsed=60.0) is None
    assert model.eta(file_format="vmdk", size_gb=10.0, percent=25.0, elapsed=60.0) == pytest.approx(180.0)
    # seen first at 40 %, at 50 % a minute later: 10 % a minute, 50 % to go
    assert model.eta(file_format="vmdk", size_gb=10.0, percent=50.0, elapsed=60.0, since_percent=40.0) == (
        pytest.approx(300.0))  # fmt: skip
    assert model.eta(file_format="vmdk", size_gb=10.0, percent=40.0, elapsed=60.0, since_percent=40.0) is None


def test_size_bands() -> None:
    assert [size_band(s) for s in (0.5, 16.0, 20.0, 64.0, 200.0, 600.0)] == [0, 1, 1, 2, 3, 4]
    assert size_band(math.nan) == -1


def test_watch_reports_etas_from_its_pace_then_from_history(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    small = rows[rows["size_gb"] < 16].reset_index(drop=True)  # one format (qcow2), one size band
    launch(small.head(4), client=client, ledger=ledger, max_rate=1000)
    first: list[Progress] = []
    run(ledger, client, sim_time, interval=30.0, max_interval=60.0, on_progress=first.append)

    opening = first[:4]
    assert all(p.eta_seconds is None for p in opening)  # no history, no pace yet
    assert any(p.eta_seconds is not None and p.eta_seconds > 0 for p in first if p.state == "running")

    model = EtaModel(jobs_frame(ledger))
    assert ("qcow2", 0) in model.rates
    launch(small.iloc[4:6], client=client, ledger=ledger, max_rate=1000)
    second: list[Progress] = []
    run(ledger, client, sim_time, interval=30.0, max_interval=60.0, on_progress=second.append)

    by_row = {r["row_id"]: r for r in ledger.rows()}
    for report in second[:2]:  # the first look: the history predicts the whole job
        size_gb = by_row[report.row_id]["size_bytes"] / GiB
        assert report.eta_seconds == pytest.approx(size_gb / model.rates[("qcow2", 0)])
    assert all(p.eta_seconds is None for p in second if p.state == "verified")


def test_adding_jobs_to_the_eta_model_equals_building_it_with_them() -> None:
    jobs = [("verified", "qcow2", 10.0, 100.0), ("verified", "qcow2", 12.0, 60.0), ("succeeded", "qcow2", 8.0, 20.0),
            ("verified", "qcow2", 100.0, 1000.0), ("verified", "zvhd2", 10.0, 10.0),
            ("verified", "vmdk", 3.0, 30.0)]  # fmt: skip
    model = EtaModel(history(jobs[:2]))
    for _, file_format, size_gb, duration_s in jobs[2:]:
        model.add(file_format=file_format, size_gb=size_gb, duration_s=duration_s)
    model.add(file_format="vmdk", size_gb=3.0, duration_s=0.0)  # no duration: says nothing

    assert model.rates == pytest.approx(EtaModel(history(jobs)).rates)


class _Recorded:
    """Every ledger watch (``_Synced``) and ``PollPlan`` that ``watch`` makes, to look at what they hold afterwards."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import ims_nb.exports.watch as jobs_module
        import ims_nb.exports.watch_rows as rows_module

        self.watchers: list[Any] = []
        self.plans: list[Any] = []
        self.history_builds = 0
        recorded, real_frame = self, jobs_module.jobs_frame

        class Watcher(jobs_module._Synced):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                recorded.watchers.append(self)

        class Plan(jobs_module.PollPlan):
            def __post_init__(self) -> None:
                super().__post_init__()
                recorded.plans.append(self)

        def frame(ledger: Ledger) -> pd.DataFrame:
            recorded.history_builds += 1
            return real_frame(ledger)

        monkeypatch.setattr(jobs_module, "_Synced", Watcher)
        monkeypatch.setattr(jobs_module, "PollPlan", Plan)
        monkeypatch.setattr(jobs_module, "jobs_frame", frame)
        monkeypatch.setattr(rows_module, "jobs_frame", frame)  # the ETA model's history


def test_a_watch_keeps_nothing_of_a_job_once_it_is_final(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, sim_time: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = first_failing_sequences(0, len(rows))[0]  # one job fails part-way, the others succeed
    launch(rows.head(failing + 1), client=client, ledger=ledger, max_rate=1000)
    recorded = _Recorded(monkeypatch)

    run(ledger, client, sim_time, on_progress=lambda report: None)

    assert {r["state"] for r in ledger.rows()} == {"verified", "failed"}
    (watcher,) = recorded.watchers
    assert watcher.by_job == {} and watcher.first_seen == {}
    assert recorded.plans and all(plan.records == {} and plan.done for plan in recorded.plans)


def test_the_eta_model_is_built_once_per_watch_and_kept_up_to_date(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, sim_time: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = rows[rows["size_gb"] < 16].reset_index(drop=True)
    launch(small.head(8), client=client, ledger=ledger, max_rate=1000)
    recorded = _Recorded(monkeypatch)
    seen: list[Progress] = []

    run(ledger, client, sim_time, interval=30.0, max_interval=60.0, on_progress=seen.append)

    # one history for the model and one for the frame watch returns, however many jobs ended in between
    assert recorded.history_builds == 2
    assert sum(p.state == "verified" for p in seen) == 8
    (watcher,) = recorded.watchers
    assert watcher.eta_model is not None
    assert watcher.eta_model.rates == pytest.approx(EtaModel(jobs_frame(ledger)).rates)


def test_a_poll_plan_forgets_the_record_of_a_finished_job_only() -> None:
    plan = PollPlan(["a", "b"], 0.0)
    plan.observe("a", {"status": "SUCCESS"}, 1.0)
    plan.observe("b", {"status": "RUNNING", "entities": {"process_percent": 5.0}}, 1.0)

    plan.forget("a")
    plan.forget("b")  # still live: kept

    assert set(plan.records) == {"b"} and plan.live == ["b"]


# --- stopping and resuming ----------------------------------------------------------------------


def test_watch_resumes_after_a_restart_with_a_new_ledger_object_and_client(
    rows: pd.DataFrame,
    connect_sim: Callable[..., ImsClient],
    ledger: Ledger,
    sim_time: Any,
    sent: Any,
) -> None:
    first_client = connect_sim()
    launch(rows.head(5), client=first_client, ledger=ledger, max_rate=1000)
    with pytest.raises(WaitTimeoutError) as caught:
        run(ledger, first_client, sim_time, timeout=200.0)
    assert caught.value.live
    assert ledger.rows(LIVE)
    path = ledger.path
    ledger.close()
    first_client.close()
    posts = len(sent.matching("POST"))

    with Ledger(path) as reopened:
        frame = run(reopened, connect_sim(), sim_time)
        assert not reopened.rows(LIVE)
    assert list(frame["state"]) == ["verified"] * 5
    assert len(sent.matching("POST")) == posts  # nothing was sent again


def test_ctrl_c_returns_the_frame_and_says_the_jobs_go_on(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, sim_time: Any, caplog: pytest.LogCaptureFixture
) -> None:
    launch(rows.head(3), client=client, ledger=ledger, max_rate=1000)
    calls: list[Progress] = []

    def interrupt(progress: Progress) -> None:
        calls.append(progress)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with caplog.at_level(logging.WARNING, logger="ims_nb"):
        frame = run(ledger, client, sim_time, on_progress=interrupt)

    assert len(calls) == 2
    assert len(frame) == 3 and list(frame.columns) == list(HISTORY_COLUMNS)
    assert len(ledger.rows(LIVE)) == 3
    assert "3 export job(s) go on in the cloud" in caplog.text


# --- the history frame --------------------------------------------------------------------------


def test_jobs_frame_columns_dtypes_durations_and_throughput(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, control: httpx.Client, sim_time: Any
) -> None:
    empty = jobs_frame(ledger)
    assert empty.empty and list(empty.columns) == list(HISTORY_COLUMNS)
    launch(rows.head(4), client=client, ledger=ledger, max_rate=1000)
    quick = plan_exports(client.images(imagetype="private"), bucket=BUCKET, key_template="fast/{id8}.{ext}",
                         quick=True, profile=SIMULATOR_PROFILE)  # fmt: skip
    big = quick[quick["exportable"].fillna(False).astype(bool) & (quick["size_gb"] > 128)].head(1)
    launch(big, client=client, ledger=ledger, max_rate=1000)

    frame = run(ledger, client, sim_time)

    assert list(frame.columns) == list(HISTORY_COLUMNS)
    assert frame.dtypes.astype(str).to_dict() == empty.dtypes.astype(str).to_dict()
    assert str(frame["begin_time"].dtype) == "datetime64[ns, UTC]"
    assert str(frame["row_id"].dtype) == "Int64" and str(frame["object_size"].dtype) == "Int64"
    assert frame["quick"].dtype == bool and list(frame["quick"]) == [False] * 4 + [True]
    assert list(frame["format"]) == ["qcow2"] * 4 + ["zvhd2"]
    truth = sim_jobs(control)
    for _, row in frame.iterrows():
        job = truth[row["job_id"]]
        begin, end = pd.Timestamp(job["begin_time"]), pd.Timestamp(job["end_time"])
        assert row["begin_time"] == begin and row["end_time"] == end
        assert row["duration_s"] == pytest.approx((end - begin).total_seconds())
        assert row["throughput_gb_h"] == pytest.approx(row["size_gb"] / (row["duration_s"] / 3600))
    assert frame["throughput_gb_h"].iloc[-1] > np.median(frame["throughput_gb_h"].iloc[:4])  # fast export is fast


def test_jobs_frame_leaves_throughput_empty_while_a_job_runs(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger
) -> None:
    launch(rows.head(2), client=client, ledger=ledger, max_rate=1000)

    frame = jobs_frame(ledger)

    assert frame["duration_s"].isna().all() and frame["throughput_gb_h"].isna().all()
    assert list(frame["state"]) == ["submitted", "submitted"]
    assert (frame["size_gb"] > 0).all()


# --- plain job ids ------------------------------------------------------------------------------


def test_watch_over_plain_job_ids_returns_their_records(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, sim_time: Any
) -> None:
    job_ids = list(launch(rows.head(3), client=client, ledger=ledger, max_rate=1000)["job_id"])
    seen: list[Progress] = []

    frame = watch(job_ids, client=client, clock=sim_time, sleep=sim_time.sleep, on_progress=seen.append,
                  interval=300.0, max_interval=1800.0, max_rate=1000.0)  # fmt: skip

    assert list(frame.columns) == list(JOB_COLUMNS)
    assert sorted(frame["job_id"]) == sorted(job_ids)
    assert (frame["status"] == "SUCCESS").all()
    assert {p.job_id for p in seen} == set(job_ids)
    assert seen[-1].state == "SUCCESS" and seen[-1].percent == 100.0
    assert all(r["state"] == "submitted" for r in ledger.rows())  # the ledger is not touched

    one = watch(job_ids[0], client=client, clock=sim_time, sleep=sim_time.sleep, **COARSE)
    assert list(one["job_id"]) == [job_ids[0]]


@pytest.mark.parametrize("bad", [[""], [None], [1]])
def test_watch_refuses_what_is_not_a_job_id(client: ImsClient, bad: list[Any]) -> None:
    with pytest.raises(ConfigError, match="job ids"):
        watch(bad, client=client)


def test_refused_credentials_stop_the_watch_without_failing_the_jobs(
    rows: pd.DataFrame, client: ImsClient, ledger: Ledger, control: httpx.Client, sim_time: Any
) -> None:
    from ims_nb.errors import AuthError

    launch(rows.head(2), client=client, ledger=ledger, max_rate=1000)
    body = json.dumps({"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information"})
    control.post("/faults", json={"kind": "response", "method": "GET", "path": "/cloudimages/job/", "status": 401,
                                  "body": body, "count": 1})  # fmt: skip

    with pytest.raises(AuthError, match="APIGW.0301"):
        run(ledger, client, sim_time)

    assert [r["state"] for r in ledger.rows()] == ["submitted", "submitted"]  # the jobs go on
    assert [r["state"] for r in run(ledger, client, sim_time).to_dict("records")] == ["verified", "verified"]
