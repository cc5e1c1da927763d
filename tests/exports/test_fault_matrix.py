"""The fault matrix (issue 8): a listing and an export batch under each fault of ``benchmarks/drills/fault_matrix.py``.

Each fault is two tests: the listing of ``IMAGES`` images (every id, none twice), and a batch of ``BATCH`` images
planned, launched and watched to the end (one export job per image by the simulator's record, every ledger row
verified, the rows and the jobs one to one); the faults that leave rows in doubt run their batch on PostgreSQL
too. The batch is smaller than the benchmark's 200 so that the matrix
runs in about a minute; ``make soak`` runs the full one. A client that misbehaves is a strict xfail whose reason
starts with FINDING.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.drills import fault_matrix as bench
from benchmarks.drills.judging import SimClock, judge_batch
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import watch
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim.faults import Fault, FaultPlan
from ims_nb.sim.server import bind
from ims_nb.vocab import State

IMAGES = 10_000
BATCH = 50
#: Faults under which each injected fault costs exactly one repeated request (a retry, or a re-sent export).
ONE_REPEAT_EACH = ("429 bursts", "500", "503", "dropped connections", "slower than the timeout")

LISTING_FINDINGS: dict[str, str] = {}
BATCH_FINDINGS: dict[str, str] = {}


NAMES = [scenario.name for scenario in bench.SCENARIOS]
#: The faults whose batch runs on PostgreSQL too (the ``where`` fixture's engines): those that leave ledger rows in
#: doubt (a POST whose answer is lost, a server gone mid-launch and mid-watch), which the ledger must settle.
ON_BOTH_ENGINES = ("dropped connections", "slower than the timeout", "simulator restart")


def cases(findings: dict[str, str]) -> list[Any]:
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=findings[name])) if name in findings
            else name for name in NAMES]  # fmt: skip


def engine_cases(findings: dict[str, str]) -> list[Any]:
    """``(name, engine)`` for every fault on SQLite, and for ``ON_BOTH_ENGINES`` on PostgreSQL too."""
    return [pytest.param(name, engine, id=f"{name}-{engine}",
                         marks=[pytest.mark.xfail(strict=True, reason=findings[name])] if name in findings else [])
            for name in NAMES for engine in ("sqlite", "postgresql")
            if engine == "sqlite" or name in ON_BOTH_ENGINES]  # fmt: skip


@pytest.fixture(scope="module")
def embedded() -> Iterator[Any]:
    world = bench.EmbeddedWorld(IMAGES)
    yield world
    world.close()


@pytest.fixture(scope="module")
def setup(embedded: Any) -> Any:
    return bench.clean_setup(embedded, IMAGES, BATCH)


@pytest.mark.parametrize("name", cases(LISTING_FINDINGS))
def test_the_listing_is_complete_without_duplicates_under(name: str, embedded: Any, setup: Any, tmp_path: Path) -> None:
    scenario = bench.BY_NAME[name]
    with bench.world_for(scenario, embedded, IMAGES, tmp_path) as world:
        result = bench.run_listing(world, scenario, setup.expected, setup.pages)
    assert result["problems"] == []
    assert result["listed"] == result["unique"] == len(setup.expected) == IMAGES
    assert (result["injected"] > 0) == (name != "none")  # the fault did reach the listing
    if name in ONE_REPEAT_EACH:
        assert result["retries"] == result["injected"]
    if name == "token expiry":
        assert result["logins"] == 2 and result["retries"] == 1  # one new token, the refused page sent again


@pytest.mark.parametrize(("name", "where"), engine_cases(BATCH_FINDINGS), indirect=["where"])
def test_the_batch_exports_each_image_once_and_the_ledger_has_every_job_under(
    name: str, where: str, embedded: Any, setup: Any, tmp_path: Path
) -> None:
    scenario = bench.BY_NAME[name]
    with bench.world_for(scenario, embedded, IMAGES, tmp_path) as world:
        result = bench.run_batch(world, scenario, setup.chosen, tmp_path, ledger=where)
    assert result["problems"] == []
    assert result["planned"] == result["jobs"] == result["rows"] == result["watched"] == BATCH
    assert result["states"] == {State.VERIFIED.value: BATCH}
    assert (result["injected"] > 0) == (name != "none")
    if name in ONE_REPEAT_EACH:  # no retry storm, nothing given up silently
        assert result["retries"] + result["resent_exports"] == result["injected"]
    if name == "none":
        assert result["retries"] == result["resent_exports"] == result["job_id_unknown"] == 0
    if name == "token expiry":
        assert result["injected"] == 3 and result["logins"] > result["injected"]
    if name == "simulator restart":
        assert result["injected"] == 2  # mid-launch and mid-watch


def test_a_password_login_client_watches_a_batch_to_its_end(embedded: Any, setup: Any, tmp_path: Path) -> None:
    embedded.prepare()
    scenario = bench.BY_NAME["token expiry"]
    recorder = bench.Recorder()
    with bench.connected(embedded, scenario, recorder) as client, Ledger(tmp_path / "ledger.sqlite") as ledger:
        plan = plan_exports(setup.chosen.head(5), bucket=bench.BUCKET, key_template=bench.KEY_TEMPLATE,
                            client=client, profile=SIMULATOR_PROFILE)  # fmt: skip
        launch(plan, client=client, ledger=ledger)
        login = client.ims  # the password login alone, without the keys that sign OBS requests
        clock = SimClock(embedded.control)
        watch(ledger, client=login, clock=clock, sleep=clock.sleep, **bench.WATCH_OPTIONS)
        rows = ledger.rows()
        # OBS checks are signed with temporary AK/SK that IAM gives for the login's token
        assert {r["state"] for r in rows} == {State.VERIFIED.value}


# --- the simulator's rules that spread a fault over a run ----------------------------------------------------


def taken(fault: Fault, requests: int) -> list[int]:
    plan = FaultPlan()
    plan.add(fault)
    return [n for n in range(1, requests + 1) if plan.take("GET", "/v2/cloudimages") is not None]


def test_a_rule_takes_the_last_burst_of_every_window_until_its_count() -> None:
    assert taken(Fault(kind="throttle", every=5, burst=2, count=None), 12) == [4, 5, 9, 10]
    assert taken(Fault(kind="drop", every=3, count=2), 12) == [3, 6]
    assert taken(Fault(kind="drop", count=None), 3) == [1, 2, 3]  # the defaults: every matching request


def test_a_request_outside_the_burst_goes_on_to_the_next_rule() -> None:
    plan = FaultPlan()
    plan.add(Fault(kind="drop", every=2, count=None))
    plan.add(Fault(kind="throttle", count=None))
    kinds = [getattr(plan.take("GET", "/x"), "kind", None) for _ in range(4)]
    assert kinds == ["throttle", "drop", "throttle", "drop"]


@pytest.mark.parametrize(
    "fields",
    [{"every": 0}, {"burst": 0}, {"every": 2, "burst": 3}, {"every": 1.5}, {"burst": True}, {"every": 10**7}],
)
def test_the_control_plane_refuses_a_bad_window(embedded: Any, fields: dict[str, Any]) -> None:
    response = embedded.control.post("/faults", json={"kind": "drop", **fields})
    assert response.status_code == 400 and response.json()["error_code"] == "SIM.0400"
    assert embedded.control.get("/faults").json()["faults"] == []


def test_the_control_plane_describes_a_window(embedded: Any) -> None:
    embedded.prepare()
    rule = {"kind": "throttle", "path": "^/nowhere$", "every": 30, "burst": 3, "count": None}
    described = embedded.control.post("/faults", json=rule).json()["faults"]
    assert [(f["every"], f["burst"], f["hits"], f["seen"]) for f in described] == [(30, 3, 0, 0)]
    embedded.control.delete("/faults").raise_for_status()


def test_the_simulator_binds_with_so_reuseaddr() -> None:
    """A killed simulator starts again on its port at once (the restart fault relies on it)."""
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
    finally:
        sock.close()


def test_the_recorder_tells_a_retry_from_a_new_request(embedded: Any) -> None:
    recorder = bench.Recorder()
    with httpx.Client(transport=recorder) as client:
        request = client.build_request("GET", f"{embedded.info['endpoint']}/_sim/health")
        client.send(request)
        client.send(request)  # the same object again: what ImsClient._send does when it retries
        client.get(f"{embedded.info['endpoint']}/_sim/health")
    assert [e.resent for e in recorder.entries] == [False, True, False]
    assert bench.tally(recorder.entries)["retries"] == 1


def test_the_judge_sees_a_duplicate_a_lost_job_and_a_row_without_a_job() -> None:
    def job(n: int, image: str) -> dict[str, Any]:
        return {"job_id": f"j{n}", "entities": {"image_id": image}, "bucket_url": f"b:{image}"}

    def row(image: str, job_id: str | None, note: str | None = None) -> dict[str, Any]:
        return {"image_id": image, "job_id": job_id, "note": note, "state": "verified", "bucket_url": f"b:{image}"}

    wanted = ["a", "b", "c"]
    lost = row("c", None, "lost answer reconciled: ...; job id unknown, following the target object")
    jobs = [job(1, "a"), job(2, "b"), job(3, "c")]
    assert judge_batch(wanted, wanted, jobs, [row("a", "j1"), row("b", "j2"), lost]) == []

    jobs = [job(1, "a"), job(2, "a"), job(3, "b")]  # a twice, c never; j3 unrecorded, j9 never issued
    problems = judge_batch(wanted, wanted, jobs, [row("a", "j1"), row("b", None), row("c", "j9")])
    assert problems == [
        "1 image(s) exported more than once",
        "1 image(s) never exported",
        "1 ledger job id(s) the service never issued",
        "1 row(s) without a job id or a 'job id unknown' note",
        "2 job(s) missing from the ledger, 0 row(s) noted lost",
    ]


# --- what the matrix leaves behind ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["token expiry", "500"])
def test_a_faulty_run_leaves_no_secret_in_logs_results_or_ledger(
    name: str, embedded: Any, setup: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Passwords, keys and IAM tokens (planted by the simulator) appear in no DEBUG record, result or ledger byte."""
    from tests.secret_scan import scan_files, scan_text

    users = embedded.control.get("/credentials").json()["users"]
    secrets = {f"{u['name']} SK": u["sk"] for u in users} | {f"{u['name']} password": u["password"] for u in users}
    scenario = bench.BY_NAME[name]
    caplog.set_level(logging.DEBUG)  # every logger, ims_nb's, httpx's and httpcore's included
    with bench.world_for(scenario, embedded, IMAGES, tmp_path) as world:
        result = bench.run_batch(world, scenario, setup.chosen, tmp_path)
    assert result["problems"] == []
    found = scan_text("DEBUG log", caplog.text, secrets) + scan_text("result", repr(result), secrets)
    assert found + scan_files(sorted(p for p in tmp_path.rglob("*") if p.is_file()), secrets) == []
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # the HTTP stack's DEBUG lines were read
