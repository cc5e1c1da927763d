"""The watch benchmark still runs end to end on a small batch (its numbers are not judged here)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from benchmarks import bench_watch

JOBS = 20


def test_a_small_batch_ends_final_and_every_request_is_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "watch.json"
    argv = ["--jobs", str(JOBS), "--images", "200", "--time-scale", "2000", "--timeout", "60", "--output", str(output)]
    assert bench_watch.main(argv) == 0

    results = json.loads(output.read_text())
    watched, baseline = results["watch"], results["baseline"]
    assert results["jobs"] == watched["jobs"] == baseline["jobs"] == JOBS
    # every job final, and the outcome counts add up
    assert sum(watched["states"].values()) == JOBS
    assert set(watched["states"]) == {"verified", "succeeded", "missing", "failed"}
    assert watched["succeeded"] + watched["failed"] == JOBS
    assert watched["verified"] == watched["succeeded"]  # the simulator writes every successful job's file
    assert baseline["succeeded"] + baseline["failed"] == JOBS
    # every launch POSTed each row once, after the two IAM reads that name the user behind its access key
    for run in (watched, baseline):
        assert run["launch"]["requests"]["export"] == run["launch"]["requests"]["total"] - 2 == JOBS
    # the request counts agree with one another
    for phase in (watched["watch"], baseline["wait"]):
        requests = phase["requests"]
        assert requests["total"] == sum(requests[kind] for kind in ("poll", "verify", "export", "other"))
        assert requests["export"] == 0
        assert phase["per_job"]["poll"] == pytest.approx(requests["poll"] / JOBS)
        assert phase["polls_per_job"]["n"] == JOBS and phase["polls_per_job"]["min"] >= 1
        assert phase["polls_per_job"]["mean"] == pytest.approx(requests["poll"] / JOBS)
        assert phase["seen_final_after_sim_s"]["min"] >= 0  # no job was seen final before it ended
    assert watched["watch"]["requests"]["verify"] == watched["verified"]  # one HEAD per successful job
    assert baseline["wait"]["requests"]["verify"] == 0
    assert watched["simulated_span_s"] > 0 and watched["job_durations_sim"]["sum_s"] > 0
    assert watched["job_durations_sim"]["sum_s"] == pytest.approx(watched["planned_durations_sim"]["sum_s"], abs=1)
    printed = capsys.readouterr().out
    assert "polls per job" in printed and "every job final" in printed


@pytest.mark.parametrize(
    ("method", "url", "kind", "job_id"),
    [
        ("GET", "http://sim/v1/cloudimages/job/ff80abc", "poll", "ff80abc"),
        ("GET", "http://sim/v1/0123/jobs/ff80abc", "poll", "ff80abc"),
        ("HEAD", "http://sim/ims-exports-cn-north-4/bench-watch/a-1234abcd.qcow2", "verify", None),
        ("POST", "http://sim/v1/cloudimages/5d18/file", "export", None),
        ("HEAD", "http://sim/ims-exports-cn-north-4", "other", None),
        ("HEAD", "http://sim/ims-exports-cn-north-4?apiversion", "other", None),
        ("GET", "http://sim/v2/cloudimages", "other", None),
    ],
)
def test_requests_are_sorted_by_kind(method: str, url: str, kind: str, job_id: str | None) -> None:
    assert bench_watch.CountingTransport.classify(httpx.Request(method, url)) == (kind, job_id)
