"""A reduced soak in ``make test``: memory stays flat and the ledger matches the simulator exactly.

The full soak (100,000 images, 5,000 jobs, a simulated day) is ``make soak``; this one runs the same script on
10,000 images, 300 jobs launched in 10 batches over 45 simulated minutes, for a simulated hour (and on until
every job has ended) at 720x: about 20 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from benchmarks.drills import soak

JOBS = 300
#: Flat memory: end RSS below start x 1.5 + 50 MiB, for the simulator and for the watcher.
RSS_RATIO, RSS_SLACK_MIB = 1.5, 50.0


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    output = tmp_path_factory.mktemp("soak") / "soak.json"
    argv = ["--images", "10000", "--jobs", str(JOBS), "--duration", "3600", "--launch-for", "2700",
            "--batches", "10", "--time-scale", "720", "--sample-every", "0.5", "--timeout", "120",
            "--output", str(output)]  # fmt: skip
    assert soak.main(argv) == 0
    loaded: dict[str, Any] = json.loads(output.read_text())
    return loaded


@pytest.mark.timeout(180)
def test_memory_of_the_simulator_and_the_watcher_stays_flat(results: dict[str, Any]) -> None:
    for name in ("simulator", "watcher"):
        memory = results["memory"][name]
        assert memory["samples"] >= 10, f"{name}: too few RSS samples"
        assert memory["end_mib"] < memory["start_mib"] * RSS_RATIO + RSS_SLACK_MIB, f"{name}: {memory}"
        assert results["memory_flat"][name] is True


def test_the_ledger_matches_the_simulator_exactly(results: dict[str, Any]) -> None:
    verdict = results["ledger_vs_simulator"]
    assert verdict["match"] is True, verdict
    assert verdict["simulator_jobs"] == verdict["ledger_rows"] == JOBS
    assert verdict["simulator_statuses"] == verdict["ledger_statuses"]
    assert sum(verdict["simulator_statuses"].values()) == JOBS
    assert set(verdict["ledger_states"]) <= {"verified", "failed"}
    assert verdict["ledger_states"].get("verified", 0) == verdict["simulator_statuses"].get("SUCCESS", 0)
    assert not (verdict["absent_from_ledger"] or verdict["in_ledger_twice"] or verdict["unknown_to_simulator"])


def test_no_request_failed_and_the_watcher_did_the_polling(results: dict[str, Any]) -> None:
    assert results["failed_requests"] == 0, results["requests"]
    driver, watcher = results["requests"]["driver"], results["requests"]["watcher"]
    assert driver["by_kind"]["export"] == JOBS
    assert watcher["by_kind"]["poll"] >= JOBS  # every job polled at least once, by the watcher process
    assert watcher["by_kind"].get("head", 0) == results["ledger_vs_simulator"]["ledger_states"].get("verified", 0)
    assert results["simulated_span_s"] >= 3600
    assert results["seen_final_after_sim_s"]["n"] == JOBS and results["seen_final_after_sim_s"]["min"] >= 0


def test_compare_names_every_kind_of_disagreement() -> None:
    def job(job_id: str, status: str = "SUCCESS") -> dict[str, Any]:
        return {"job_id": job_id, "status": status, "error_code": None, "end_time": "2026-01-01T00:00:00.000Z"}

    def row(job_id: str | None, status: str = "SUCCESS", state: str = "verified") -> dict[str, Any]:
        return {"job_id": job_id, "status": status, "error_code": None, "end_time": "2026-01-01T00:00:00.000Z",
                "state": state}  # fmt: skip

    same = soak.compare([job("a"), job("b")], [row("a"), row("b")])
    assert same["match"] is True and same["simulator_statuses"] == {"SUCCESS": 2}

    verdict = soak.compare(
        [job("a"), job("b"), job("c"), job("d")],
        [row("a"), row("a"), row("c", state="missing"), row("d", status="FAIL"), row("x"), row(None)],
    )
    assert verdict["match"] is False
    assert verdict["absent_from_ledger"] == ["b"]
    assert verdict["in_ledger_twice"] == ["a"]
    assert verdict["unknown_to_simulator"] == ["x", "<no job id>"]
    assert {d["job_id"] for d in verdict["differing"]} == {"c", "d"}


def test_a_request_fails_unless_it_is_the_head_of_an_object_not_there_yet() -> None:
    answers = {"/b/missing.qcow2": 404, "/v1/p/cloudimages/i/file": 400, "/v1/cloudimages/job/j": 503}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/drop":
            raise httpx.ConnectError("dropped", request=request)
        return httpx.Response(answers.get(request.url.path, 200))

    transport = soak.CountingTransport(httpx.MockTransport(answer))
    with httpx.Client(transport=transport, base_url="http://sim") as client:
        client.head("/b/missing.qcow2")
        client.post("/v1/p/cloudimages/i/file")
        client.get("/v1/cloudimages/job/j")
        client.get("/v1/p/jobs/j")
        with pytest.raises(httpx.ConnectError):
            client.get("/drop")
    summary = transport.summary()
    assert summary["total"] == 5 and summary["failed"] == 3
    assert summary["by_kind"] == {"head": 1, "export": 1, "poll": 2, "other": 1}
    assert summary["by_answer"]["HEAD 404"] == 1 and summary["by_answer"]["GET ConnectError"] == 1


def test_rss_is_read_from_proc_and_none_for_a_process_that_is_gone() -> None:
    assert soak.rss_bytes(os.getpid()) > 10 * 1024**2
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert soak.rss_bytes(gone.pid) is None


def test_batches_split_the_jobs_and_memory_is_judged_by_the_stated_bound() -> None:
    assert soak.batch_sizes(5000, 85) == [59] * 70 + [58] * 15
    assert soak.batch_sizes(3, 5) == [1, 1, 1]
    assert soak.flat({"samples": 2, "start_mib": 100.0, "end_mib": 199.0}) is True
    assert soak.flat({"samples": 2, "start_mib": 100.0, "end_mib": 201.0}) is False
    assert soak.flat({"samples": 0}) is False
