"""Export batches against the simulator: the plan, launching once, force, concurrency and rate, injected faults."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import ims_nb
from ims_nb.client import ImsClient
from ims_nb.client.retry import RetryPolicy
from ims_nb.errors import ConfigError, SimulatorWarning
from ims_nb.exports.launch import JOB_ID_UNKNOWN, in_doubt, launch, reconcile
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import PLAN_COLUMNS, plan_exports, review
from ims_nb.exports.watch import watch
from ims_nb.preflight import preflight, preflight_summary
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator
from ims_nb.sim.jobs import plan_job
from ims_nb.vocab import LIVE, NORMAL_EXPORT_LIMIT, SIZE_LIMIT, State, Target
from tests.helpers import BUCKET

TEMPLATE = "exports/{id8}.{ext}"
#: Retries of a throttled POST without real waiting.
FAST_RETRY = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05)


# --- helpers ------------------------------------------------------------------------------------


def sim_jobs(control: httpx.Client) -> list[dict[str, Any]]:
    """Every export job the simulator accepted: the judge of "exported exactly once"."""
    return list(control.get("/state").json()["jobs"])


def jobs_per_image(control: httpx.Client) -> Counter[str]:
    return Counter(job["entities"]["image_id"] for job in sim_jobs(control))


def add_fault(control: httpx.Client, **fault: Any) -> None:
    control.post("/faults", json=fault).raise_for_status()


def exportable_rows(plan: pd.DataFrame) -> pd.DataFrame:
    return plan[plan["exportable"].fillna(False).astype(bool)].reset_index(drop=True)


def failing_sequences(seed: int, upto: int) -> set[int]:
    """The job sequence numbers that fail part-way in the simulator's world of ``seed`` (its stated model)."""
    image = {"id": "x", "name": "x", "__image_size": 1024**3}
    return {n for n in range(1, upto + 1)
            if plan_job(seed=seed, sequence=n, image=image, bucket=BUCKET, key="k", file_format="qcow2", quick=False,
                        now=0.0).fail_code}  # fmt: skip


def wait_for_jobs(control: httpx.Client, count: int, limit: float = 15.0) -> None:
    """Until the simulator holds ``count`` jobs (POSTs it delayed are accepted after their client gave up)."""
    deadline = time.monotonic() + limit
    while len(sim_jobs(control)) < count:
        assert time.monotonic() < deadline, f"the simulator never reached {count} jobs"
        time.sleep(0.05)


def watch_to_end(ledger: Ledger, client: ImsClient, sim_time: Any, **options: Any) -> pd.DataFrame:
    arguments = {"interval": 300.0, "max_interval": 1800.0, "max_rate": 1000.0, "timeout": 7 * 24 * 3600.0}
    return watch(ledger, client=client, clock=sim_time, sleep=sim_time.sleep, **(arguments | options))


def assert_exactly_once(ledger: Ledger, control: httpx.Client, images: list[str]) -> list[dict[str, Any]]:
    """Each image has one accepted job; the ledger holds every job id except those of rows saying it was lost.

    Returns the rows whose job id is unknown.
    """
    jobs = sim_jobs(control)
    assert Counter(j["entities"]["image_id"] for j in jobs) == Counter(images)
    rows = ledger.rows()
    known = {r["job_id"] for r in rows if r["job_id"]}
    assert known <= {j["job_id"] for j in jobs}
    unknown_to_ledger = [j for j in jobs if j["job_id"] not in known]
    lost = [r for r in rows if JOB_ID_UNKNOWN in (r["note"] or "")]
    assert Counter(j["bucket_url"] for j in unknown_to_ledger) == Counter(r["bucket_url"] for r in lost)
    return lost


@pytest.fixture()
def images(client: ImsClient) -> pd.DataFrame:
    return client.images(imagetype="private")


class RefusesPosts(httpx.BaseTransport):
    """Sends every request but a POST, which fails to connect with ``message``: a request that never left."""

    def __init__(self, message: str) -> None:
        self.message = message

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ConnectError(self.message, request=request)
        return httpx.HTTPTransport().handle_request(request)


@pytest.fixture()
def client(connect_sim: Callable[..., ImsClient]) -> ImsClient:
    """``client`` with fast retries."""
    return connect_sim(retry=FAST_RETRY)


@pytest.fixture()
def plan(images: pd.DataFrame, client: ImsClient) -> pd.DataFrame:
    return plan_exports(images, bucket=BUCKET, key_template=TEMPLATE, client=client, profile=SIMULATOR_PROFILE)


# --- the plan -----------------------------------------------------------------------------------


def test_the_plan_has_one_row_per_image_with_its_target_and_verdict(plan: pd.DataFrame, images: pd.DataFrame) -> None:
    assert list(plan.columns) == [*PLAN_COLUMNS, "size_bytes", "region", "project_id"]
    assert list(plan["image_id"]) == list(images["id"])
    assert str(plan["exportable"].dtype) == "boolean"
    first = plan.iloc[0]
    assert first["bucket_url"] == f"{BUCKET}:exports/{first['image_id'][:8]}.{'zvhd2' if first['quick'] else 'qcow2'}"
    assert (plan["region"] == "cn-north-4").all()


def test_auto_takes_fast_export_for_big_unencrypted_images_only(plan: pd.DataFrame, images: pd.DataFrame) -> None:
    big = (images["size_bytes"] > NORMAL_EXPORT_LIMIT).to_numpy()
    encrypted = images["encrypted"].fillna(False).astype(bool).to_numpy()
    assert big.any() and (big & encrypted).any() and (big & ~encrypted).any()  # the inventory has each kind

    assert (plan["quick"].to_numpy() == (big & ~encrypted)).all()
    assert plan.loc[plan["quick"], "file_format"].isna().all()
    assert (plan.loc[~plan["quick"], "file_format"] == "qcow2").all()
    assert plan.loc[plan["quick"], "bucket_url"].str.endswith(".zvhd2").all()
    # a big encrypted image cannot take fast export, and is too big for a normal one
    for blocking in plan.loc[big & encrypted, "blocking"]:
        assert "fast-export-required" in blocking or "size-limit" in blocking


@pytest.mark.parametrize("quick", [True, False])
def test_quick_true_or_false_applies_to_every_image(images: pd.DataFrame, quick: bool) -> None:
    plan = plan_exports(images, bucket=BUCKET, key_template=TEMPLATE, file_format="vhd", quick=quick,
                        profile=SIMULATOR_PROFILE)  # fmt: skip

    assert (plan["quick"] == quick).all()
    if quick:
        assert plan["file_format"].isna().all()
        assert plan["bucket_url"].str.endswith(".zvhd2").all()
    else:
        assert (plan["file_format"] == "vhd").all()
        big = (images["size_bytes"] > NORMAL_EXPORT_LIMIT) & (images["size_bytes"] < SIZE_LIMIT)
        assert all("fast-export-required" in b for b in plan.loc[big.to_numpy(), "blocking"])


def test_quick_must_be_auto_true_or_false(images: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="quick must be"):
        plan_exports(images, bucket=BUCKET, quick="yes")


def test_a_key_template_that_gives_two_images_one_target_is_refused_naming_them(images: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"target\(s\) to several images") as caught:
        plan_exports(images, bucket=BUCKET, key_template="exports/{platform}.{ext}", profile=SIMULATOR_PROFILE)
    message = str(caught.value)
    assert f"{BUCKET}:exports/" in message and "add {id8} or {id}" in message


def test_the_verdicts_agree_with_what_the_simulator_exports(
    plan: pd.DataFrame, images: pd.DataFrame, exportable: list[dict[str, Any]]
) -> None:
    # the fixture's judge wants images both export kinds accept: small, and not encrypted (no fast export)
    encrypted = plan["image_id"].map(dict(zip(images["id"], images["encrypted"], strict=True))).astype(bool)
    both = plan["exportable"] & (plan["size_bytes"] < NORMAL_EXPORT_LIMIT) & ~encrypted
    assert set(plan.loc[both, "image_id"]) == {i["id"] for i in exportable}
    for _, row in plan.iterrows():
        assert bool(row["exportable"]) == (not row["blocking"])
        assert isinstance(row["warnings"], list) and isinstance(row["messages"], list)
        assert len(row["messages"]) >= len(row["blocking"])


def test_an_existing_target_object_blocks_its_row(
    images: pd.DataFrame, client: ImsClient, control: httpx.Client
) -> None:
    first = plan_exports(images, bucket=BUCKET, key_template=TEMPLATE, client=client, profile=SIMULATOR_PROFILE)
    target = exportable_rows(first).iloc[0]
    control.post("/objects", json={"bucket": BUCKET, "key": target["object_key"], "size": 1})

    again = plan_exports(images, bucket=BUCKET, key_template=TEMPLATE, client=client, profile=SIMULATOR_PROFILE)
    row = again[again["image_id"] == target["image_id"]].iloc[0]
    assert "object-exists" in row["blocking"] and not row["exportable"]


def test_a_client_detected_as_the_simulator_gets_its_profile(
    fresh_sim: Simulator, clean_env: Path, monkeypatch: pytest.MonkeyPatch, plan: pd.DataFrame
) -> None:
    monkeypatch.setenv("IMS_NB_SIM", json.dumps(fresh_sim.info.as_json_dict()))
    with pytest.warns(SimulatorWarning), ims_nb.connect() as detected:
        assert detected.settings.is_simulator
        found = plan_exports(detected.images(imagetype="private"), bucket=BUCKET, key_template=TEMPLATE,
                             client=detected)  # fmt: skip
    assert list(found["exportable"]) == list(plan["exportable"])


def test_the_plan_carries_bucket_and_object_key_and_derives_bucket_url(plan: pd.DataFrame) -> None:
    assert (plan["bucket"] == BUCKET).all()
    assert (plan["bucket_url"] == plan["bucket"] + ":" + plan["object_key"]).all()


def test_concrete_targets_are_planned_as_given_from_a_mapping_or_a_column(
    images: pd.DataFrame, client: ImsClient
) -> None:
    few = images.head(3).reset_index(drop=True)
    given = {few["id"][0]: Target(BUCKET, "hand/a.qcow2"), few["id"][1]: f"{BUCKET}:odd/{{name}}.qcow2",
             few["id"][2]: "other-bucket:b.qcow2"}  # fmt: skip
    planned = plan_exports(few, targets=given, file_format="qcow2", quick=False, profile=SIMULATOR_PROFILE)
    assert planned["bucket_url"].tolist() == [str(Target.parse(t)) for t in given.values()]  # no template expanded
    assert planned["object_key"].tolist() == ["hand/a.qcow2", "odd/{name}.qcow2", "b.qcow2"]
    assert "bucket-url-invalid" in planned["blocking"][1]  # braces are not key characters
    by_column = plan_exports(few.assign(where=list(given.values())), targets="where", file_format="qcow2",
                             quick=False, profile=SIMULATOR_PROFILE)  # fmt: skip
    assert by_column["bucket_url"].tolist() == planned["bucket_url"].tolist()
    per_row = plan_exports(few, targets=given, file_format=["vhd", None, "vmdk"], quick=[False, True, False],
                           profile=SIMULATOR_PROFILE)  # fmt: skip
    assert per_row["file_format"].tolist() == ["vhd", pd.NA, "vmdk"] and per_row["quick"].tolist() == [0, 1, 0]


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"targets": {}}, "no target for image"),
        ({"targets": "nope"}, "names no column"),
        ({"targets": {"x": "b:k"}, "bucket": BUCKET}, "not both"),
        ({}, "bucket must be a bucket name"),
    ],
)
def test_targets_arguments_are_checked(images: pd.DataFrame, arguments: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        plan_exports(images.head(2), **arguments)


def test_review_gives_plan_violations_and_summary_from_one_round_of_lookups(
    images: pd.DataFrame, client: ImsClient, sent: Any
) -> None:
    sent.clear()
    found = review(images, bucket=BUCKET, key_template=TEMPLATE, file_format="vhd", quick=False, client=client,
                   profile=SIMULATOR_PROFILE)  # fmt: skip
    heads = [r.url.path for r in sent.matching("HEAD")]
    assert len(heads) == len(set(heads)) == len(images) + 1  # the bucket once, each target object once
    url = f"{BUCKET}:{TEMPLATE}"
    alone = preflight_summary(images, bucket_url=url, file_format="vhd", client=client, profile=SIMULATOR_PROFILE)
    pd.testing.assert_frame_equal(found.summary, alone)
    violations = preflight(images, bucket_url=url, file_format="vhd", client=client, profile=SIMULATOR_PROFILE)
    pd.testing.assert_frame_equal(found.violations, violations[list(found.violations.columns)])
    assert found.summary["exportable"].tolist() == found.plan["exportable"].tolist()


# --- launch -------------------------------------------------------------------------------------


def test_launch_submits_exactly_the_exportable_rows(
    plan: pd.DataFrame, client: ImsClient, ledger: Ledger, control: httpx.Client
) -> None:
    launched = launch(plan, client=client, ledger=ledger, max_rate=1000)

    wanted = list(exportable_rows(plan)["image_id"])
    assert sorted(launched["image_id"]) == sorted(wanted)
    assert (launched["state"] == "submitted").all()
    assert launched["job_id"].notna().all()
    assert jobs_per_image(control) == Counter(wanted)
    assert {j["job_id"] for j in sim_jobs(control)} == set(launched["job_id"])
    by_image = {j["entities"]["image_id"]: j for j in sim_jobs(control)}
    for _, row in launched.iterrows():
        assert by_image[row["image_id"]]["bucket_url"] == row["bucket_url"]


def test_the_same_plan_twice_launches_nothing_the_second_time(
    plan: pd.DataFrame, client: ImsClient, ledger: Ledger, control: httpx.Client, sent: Any
) -> None:
    first = launch(plan, client=client, ledger=ledger, max_rate=1000)
    jobs = len(sim_jobs(control))
    sent.clear()

    second = launch(plan, client=client, ledger=ledger, max_rate=1000)

    assert len(first) == jobs > 0
    assert second.empty and list(second.columns) == list(ledger.frame().columns)
    assert len(sim_jobs(control)) == jobs
    assert sent.matching("POST") == []
    assert len(ledger.rows()) == jobs


def test_force_launches_again_and_the_service_refuses_live_then_finished_exports(
    plan: pd.DataFrame, client: ImsClient, ledger: Ledger, control: httpx.Client, sim_time: Any
) -> None:
    few = exportable_rows(plan).head(3)
    launch(few, client=client, ledger=ledger, max_rate=1000)
    assert len(sim_jobs(control)) == 3

    running = launch(few, client=client, ledger=ledger, max_rate=1000, force=True)
    assert len(running) == 3
    assert (running["state"] == "refused").all() and (running["error_code"] == "IMG.0148").all()
    assert len(sim_jobs(control)) == 3

    watch_to_end(ledger, client, sim_time)
    assert all(j["status"] == "SUCCESS" for j in sim_jobs(control))  # seed 0: its first jobs all succeed
    assert launch(few, client=client, ledger=ledger, max_rate=1000).empty  # done rows block
    finished = launch(few, client=client, ledger=ledger, max_rate=1000, force=True)
    assert (finished["state"] == "refused").all() and (finished["error_code"] == "IMG.0070").all()
    assert len(sim_jobs(control)) == 3
    assert len(ledger.rows()) == 9


def test_launch_checks_its_arguments(plan: pd.DataFrame, client: ImsClient, ledger: Ledger) -> None:
    with pytest.raises(ConfigError, match="concurrency"):
        launch(plan, client=client, ledger=ledger, concurrency=0)
    with pytest.raises(ConfigError, match="concurrency"):
        launch(plan, client=client, ledger=ledger, concurrency=33)
    with pytest.raises(ConfigError, match="exportable"):
        launch(plan.drop(columns=["exportable"]), client=client, ledger=ledger)
    assert ledger.rows() == []


class InFlight(httpx.BaseTransport):
    """Counts the export POSTs waiting for their answer at once (and stamps each with ``clock``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = httpx.HTTPTransport()
        self.clock = clock
        self.now = self.peak = 0
        self.starts: list[float] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return self.inner.handle_request(request)
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.starts.append(self.clock())
        try:
            return self.inner.handle_request(request)
        finally:
            with self._lock:
                self.now -= 1

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_at_most_concurrency_exports_are_in_flight(
    plan: pd.DataFrame, connect_sim: Callable[..., ImsClient], ledger: Ledger, control: httpx.Client, concurrency: int
) -> None:
    counter = InFlight()
    slow = connect_sim(transport=counter)
    add_fault(control, kind="latency", method="POST", path="/file$", delay=0.2, count=None)

    launched = launch(exportable_rows(plan).head(9), client=slow, ledger=ledger, concurrency=concurrency,
                      max_rate=1000)  # fmt: skip

    assert (launched["state"] == "submitted").all() and len(launched) == 9
    assert counter.peak == concurrency


def test_the_rate_cap_spaces_the_exports_on_the_injected_clock(
    plan: pd.DataFrame, connect_sim: Callable[..., ImsClient], ledger: Ledger
) -> None:
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    counter = InFlight(clock=lambda: now[0])
    client = connect_sim(transport=counter)

    launch(exportable_rows(plan).head(6), client=client, ledger=ledger, concurrency=1, max_rate=2.0,
           clock=lambda: now[0], sleep=sleep)  # fmt: skip

    # a burst of two, then one every half second (2 per second)
    assert counter.starts == [100.0, 100.0, 100.5, 101.0, 101.5, 102.0]
    assert [s for s in sleeps if s > 0] == [0.5] * 4


# --- injected faults ----------------------------------------------------------------------------


def test_lost_answers_and_refusals_end_with_every_image_exported_exactly_once(
    plan: pd.DataFrame,
    connect_sim: Callable[..., ImsClient],
    ledger: Ledger,
    control: httpx.Client,
    sim_time: Any,
) -> None:
    """429 bursts, 500 and 503 answers, dropped connections, answers later than the client's timeout."""
    client = connect_sim(retry=FAST_RETRY, timeout=0.5)
    rows = exportable_rows(plan)
    # The two POSTs the server accepts after their client gave up get the last sequence numbers: take a batch
    # whose last two jobs do not fail, so that exactly once means one job each (test_a_lost_job_that_fails_...
    # covers the other case).
    failing = failing_sequences(0, len(rows))
    size = max(n for n in range(3, len(rows) + 1) if not {n - 1, n} & failing)
    batch, late = rows.head(size - 2), rows.iloc[size - 2 : size]
    add_fault(control, kind="throttle", method="POST", path="/file$", count=3)  # retried by the client
    add_fault(control, kind="response", method="POST", path="/file$", status=500, count=2, body="{}")
    add_fault(control, kind="response", method="POST", path="/file$", status=503, count=1, body="")
    add_fault(control, kind="drop", method="POST", path="/file$", count=2)

    first = launch(batch, client=client, ledger=ledger, max_rate=1000)

    unknown = first[first["state"] == "unknown"]
    assert len(unknown) == 5  # two 500s, a 503, two drops: nothing was started, but the client cannot know
    assert (first["state"].isin(["submitted", "unknown"])).all()
    assert sorted(in_doubt(ledger)["row_id"]) == sorted(unknown["row_id"])
    assert len(sim_jobs(control)) == size - 2 - 5

    settled = reconcile(ledger, client)  # the export is sent again: the service starts it now
    assert sorted(settled["row_id"]) == sorted(unknown["row_id"])
    assert (settled["state"] == "submitted").all() and settled["job_id"].notna().all()
    assert settled["note"].str.contains("no export of the image was running").all()
    assert in_doubt(ledger).empty

    add_fault(control, kind="latency", method="POST", path="/file$", delay=1.5, count=2)
    second = launch(late, client=client, ledger=ledger, max_rate=1000)
    assert (second["state"] == "unknown").all() and len(second) == 2
    assert sorted(in_doubt(ledger)["row_id"]) == sorted(second["row_id"])
    wait_for_jobs(control, size)  # the server went on and started both exports

    confirmed = reconcile(ledger, client)  # IMG.0148: the first attempt runs, its job id is lost
    assert (confirmed["state"] == "running").all() and confirmed["job_id"].isna().all()
    assert confirmed["note"].str.contains(JOB_ID_UNKNOWN).all()
    assert sorted(in_doubt(ledger)["row_id"]) == sorted(second["row_id"])  # live without a job id
    assert len(sim_jobs(control)) == size

    frame = watch_to_end(ledger, client, sim_time)

    assert not ledger.rows(LIVE)
    assert set(frame["state"]) <= {"verified", "failed"}
    assert in_doubt(ledger).empty
    lost = assert_exactly_once(ledger, control, list(rows.head(size)["image_id"]))
    assert sorted(r["row_id"] for r in lost) == sorted(second["row_id"])
    assert all(r["state"] == State.VERIFIED for r in lost)  # followed by their object
    by_id = {j["job_id"]: j for j in sim_jobs(control)}
    for row in ledger.rows():
        if row["job_id"]:
            expected = "verified" if by_id[row["job_id"]]["status"] == "SUCCESS" else "failed"
            assert row["state"] == expected, row


def test_a_429_burst_longer_than_the_retries_is_a_transient_refusal(
    plan: pd.DataFrame, connect_sim: Callable[..., ImsClient], ledger: Ledger, control: httpx.Client
) -> None:
    client = connect_sim(retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))
    one = exportable_rows(plan).head(1)
    add_fault(control, kind="throttle", method="POST", path="/file$", count=2)

    refused = launch(one, client=client, ledger=ledger, max_rate=1000)
    assert list(refused["state"]) == ["refused"] and list(refused["error_code"]) == ["APIGW.0308"]
    assert sim_jobs(control) == []

    again = launch(one, client=client, ledger=ledger, max_rate=1000)  # not blocked: flow control passes
    assert list(again["state"]) == ["submitted"]
    assert jobs_per_image(control) == Counter(one["image_id"])


def test_a_request_that_never_left_is_a_transient_refusal(
    plan: pd.DataFrame, connect_sim: Callable[..., ImsClient], ledger: Ledger, control: httpx.Client
) -> None:
    one = exportable_rows(plan).head(1)
    down = connect_sim(transport=RefusesPosts("connection refused"), retry=RetryPolicy(max_attempts=1))
    refused = launch(one, client=down, ledger=ledger, max_rate=1000)
    assert list(refused["state"]) == ["refused"] and list(refused["error_code"]) == ["TRANSPORT"]

    up = connect_sim()
    assert list(launch(one, client=up, ledger=ledger, max_rate=1000)["state"]) == ["submitted"]
    assert jobs_per_image(control) == Counter(one["image_id"])


def test_a_lost_job_that_fails_is_sent_again_once_the_service_says_it_ended(
    plan: pd.DataFrame,
    connect_sim: Callable[..., ImsClient],
    ledger: Ledger,
    control: httpx.Client,
    sim_time: Any,
) -> None:
    """Without a job listing, only a new POST tells that a job whose id was lost has ended without its file."""
    client = connect_sim(timeout=0.5)
    rows = exportable_rows(plan)
    doomed = min(failing_sequences(0, len(rows)))  # seed 0: the first job sequence that fails part-way
    launch(rows.head(doomed - 1), client=client, ledger=ledger, max_rate=1000)
    target = rows.iloc[doomed - 1 : doomed]
    add_fault(control, kind="latency", method="POST", path="/file$", delay=1.0, count=1)
    assert list(launch(target, client=client, ledger=ledger, max_rate=1000)["state"]) == ["unknown"]
    wait_for_jobs(control, doomed)
    assert list(reconcile(ledger, client)["state"]) == ["running"]

    watch_to_end(ledger, client, sim_time)

    image_id = target["image_id"].iloc[0]
    jobs = [j for j in sim_jobs(control) if j["entities"]["image_id"] == image_id]
    assert [j["status"] for j in jobs] == ["FAIL", "SUCCESS"]
    (row,) = [r for r in ledger.rows() if r["image_id"] == image_id]
    assert row["job_id"] == jobs[1]["job_id"] and row["state"] == "verified"
    assert JOB_ID_UNKNOWN in row["note"] and "sent again as this job" in row["note"]
    known = {r["job_id"] for r in ledger.rows()}
    assert [j["job_id"] for j in sim_jobs(control) if j["job_id"] not in known] == [jobs[0]["job_id"]]


def test_in_doubt_is_empty_with_its_columns(ledger: Ledger) -> None:
    assert in_doubt(ledger).empty
    assert list(in_doubt(ledger).columns) == list(ledger.frame().columns)


def test_a_re_send_that_never_leaves_keeps_the_row_in_doubt(
    plan: pd.DataFrame, connect_sim: Callable[..., ImsClient], ledger: Ledger, control: httpx.Client
) -> None:
    one = exportable_rows(plan).head(1)
    add_fault(control, kind="response", method="POST", path="/file$", status=500, count=1)
    (row_id,) = launch(one, client=connect_sim(), ledger=ledger, max_rate=1000)["row_id"]
    assert ledger.row(row_id)["state"] == "unknown"

    reconcile(ledger, connect_sim(transport=RefusesPosts("network down"), retry=RetryPolicy(max_attempts=1)))

    row = ledger.row(row_id)
    assert (row["state"], row["error_code"]) == ("unknown", "TRANSPORT")  # not "refused": the doubt remains
    assert launch(one, client=connect_sim(), ledger=ledger, max_rate=1000)["state"].tolist() == ["submitted"]
    assert jobs_per_image(control) == Counter(one["image_id"])
    assert len(ledger.rows()) == 1


def test_an_object_that_appears_while_a_row_is_reconciled_settles_it(
    plan: pd.DataFrame,
    connect_sim: Callable[..., ImsClient],
    ledger: Ledger,
    control: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = connect_sim()
    one = exportable_rows(plan).head(1)
    add_fault(control, kind="response", method="POST", path="/file$", status=503, count=1)
    (row_id,) = launch(one, client=client, ledger=ledger, max_rate=1000)["row_id"]
    key = one["bucket_url"].iloc[0].partition(":")[2]
    # the object is not there when reconcile looks, and is there when the export is sent again (IMG.0070)
    real = client.object_size
    looks: list[str] = []

    def object_size(bucket: str, name: str) -> int | None:
        looks.append(name)
        if len(looks) == 1:
            control.post("/objects", json={"bucket": bucket, "key": name, "size": 1234}).raise_for_status()
            return None
        return real(bucket, name)

    monkeypatch.setattr(client, "object_size", object_size)
    reconcile(ledger, client)

    row = ledger.row(row_id)
    assert (row["state"], row["object_size"], row["error_code"]) == ("verified", 1234, None)
    assert JOB_ID_UNKNOWN in row["note"] and looks == [key, key]
    assert sim_jobs(control) == []
