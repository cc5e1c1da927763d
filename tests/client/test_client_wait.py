"""``wait()`` over the simulator's manual clock: completion, progress, per-job backoff, the rate cap, deadlines."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ims_nb import ApiError, ImsClient, WaitTimeoutError
from ims_nb.errors import ConfigError
from tests.helpers import BUCKET

POLL = "^/v1/cloudimages/job/"
FORMATS = ("qcow2", "vhd", "zvhd", "vmdk")


def export_all(client: ImsClient, images: list[dict[str, Any]], *, quick: bool = False) -> list[str]:
    return [
        client.export_image(
            image["id"],
            f"{BUCKET}:wait/{image['id']}.{'zvhd2' if quick else FORMATS[n % 4]}",
            None if quick else FORMATS[n % 4],
            quick=quick,
        )
        for n, image in enumerate(images)
    ]


class Progress:
    """An ``on_progress`` callback that keeps every record with the (simulated) time it arrived."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.seen: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)

    def __call__(self, job_id: str, record: dict[str, Any]) -> None:
        self.seen[job_id].append((self.clock(), record))

    def percents(self, job_id: str) -> list[float]:
        return [record["entities"]["process_percent"] for _, record in self.seen[job_id]]

    def statuses(self, job_id: str) -> list[str]:
        return [record["status"] for _, record in self.seen[job_id]]

    def gaps(self, job_id: str, status: str) -> list[float]:
        times = [t for t, record in self.seen[job_id] if record["status"] == status]
        return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_wait_follows_several_jobs_to_the_end(
    sim_client: ImsClient, exportable: list[dict[str, Any]], sim_time: Any, control: httpx.Client
) -> None:
    jobs = export_all(sim_client, exportable[:4])
    keys = [f"wait/{image['id']}.{FORMATS[n]}" for n, image in enumerate(exportable[:4])]
    assert not any(sim_client.object_exists(BUCKET, key) for key in keys)
    progress = Progress(sim_time)
    records = sim_client.wait(jobs, on_progress=progress, clock=sim_time, sleep=sim_time.sleep, interval=10)
    assert list(records) == jobs and {r["status"] for r in records.values()} == {"SUCCESS"}
    for job_id in jobs:
        percents, statuses = progress.percents(job_id), progress.statuses(job_id)
        assert percents == sorted(percents) and percents[0] == 0.0 and percents[-1] == 100.0
        assert len(set(percents)) > 2  # it really rose while running
        assert statuses[0] == "INIT" and statuses[-1] == "SUCCESS" and "RUNNING" in statuses
        assert records[job_id] == progress.seen[job_id][-1][1]
    state = {j["job_id"]: j for j in control.get("/state").json()["jobs"]}
    assert {state[j]["status"] for j in jobs} == {"SUCCESS"}
    sizes = [sim_client.object_size(BUCKET, key) for key in keys]
    assert all(size and size > 0 for size in sizes)  # the files are there now: object lookups are not cached


def test_a_job_standing_still_is_polled_less_and_less_often(
    sim_client: ImsClient, exportable: list[dict[str, Any]], sim_time: Any
) -> None:
    # the seed-0 world queues job 1 for about 43 s and job 2 for about 158 s before they run (for minutes)
    mid_sized = [i for i in exportable if 3 * 1024**3 < int(i["__image_size"]) < 8 * 1024**3][:2]
    jobs = export_all(sim_client, mid_sized)
    progress = Progress(sim_time)
    sim_client.wait(
        jobs, on_progress=progress, clock=sim_time, sleep=sim_time.sleep, interval=5, max_interval=40, max_rate=50
    )
    queued = progress.gaps(jobs[1], "INIT")
    assert queued == pytest.approx([5, 7.5, 11.25, 16.875, 25.3125, 37.96875, 40, 40][: len(queued)])
    assert len(queued) >= 7 and max(queued) == 40  # backed off up to max_interval, and no further
    for job_id in jobs:  # moving: polled after a quarter of the time it still needs, more often as the end nears
        running = progress.gaps(job_id, "RUNNING")
        assert len(running) > 3 and all(5 - 1e-6 <= gap <= 40 + 1e-6 for gap in running)
        assert all(later <= earlier + 1e-6 for earlier, later in zip(running[1:], running[2:], strict=False))
        assert running[-1] == pytest.approx(5)


def test_all_polls_together_stay_under_the_rate_cap(
    sim_client: ImsClient, exportable: list[dict[str, Any]], sim_time: Any, sent: Any
) -> None:
    jobs = export_all(sim_client, exportable[:6])
    sent.clear()
    sent.clock = sim_time
    with pytest.raises(WaitTimeoutError):
        sim_client.wait(jobs, clock=sim_time, sleep=sim_time.sleep, interval=1, max_interval=1, max_rate=2, timeout=20)
    polls = [t for r, t in zip(sent.requests, sent.times, strict=True) if r.url.path.startswith("/v1/cloudimages/job/")]
    assert 30 <= len(polls) <= 2 + 2 * 20  # six jobs wanted 120 polls in 20 s; the cap allowed about 40
    burst, rate = 2, 2
    for i in range(len(polls)):
        for j in range(i + 1, len(polls)):
            assert j - i + 1 <= burst + rate * (polls[j] - polls[i]) + 1e-6, (i, j, polls[i], polls[j])
    per_second = defaultdict(int)
    for t in polls:
        per_second[int(t + 1e-9)] += 1
    assert max(per_second.values()) <= burst + rate


def test_a_wait_that_times_out_keeps_the_last_records(
    sim_client: ImsClient, exportable: list[dict[str, Any]], sim_time: Any
) -> None:
    done, slow = export_all(sim_client, exportable[:2], quick=True)
    sim_client.wait([done], clock=sim_time, sleep=sim_time.sleep)
    started = sim_time.now
    with pytest.raises(WaitTimeoutError) as raised:
        sim_client.wait([done, slow], clock=sim_time, sleep=sim_time.sleep, timeout=30)
    error = raised.value
    assert isinstance(error, TimeoutError) and error.live == [slow] and slow in str(error)
    assert error.records[done]["status"] == "SUCCESS" and error.records[slow]["status"] in ("INIT", "RUNNING")
    assert sim_time.now - started == pytest.approx(30)  # slept up to the deadline, not past it


def test_a_failed_job_ends_the_wait_with_its_record(
    sim_client: ImsClient, exportable: list[dict[str, Any]], sim_time: Any
) -> None:
    # in the seed-0 world the 17th export job is the first that fails
    jobs = export_all(sim_client, exportable[:17], quick=True)
    records = sim_client.wait(jobs, clock=sim_time, sleep=sim_time.sleep, interval=15, max_interval=120, max_rate=20)
    assert [job_id for job_id, r in records.items() if r["status"] == "FAIL"] == [jobs[16]]
    failed = records[jobs[16]]
    assert failed["error_code"].startswith("IMG.") and failed["fail_reason"] and failed["end_time"]
    assert 0 < failed["entities"]["process_percent"] < 100
    assert not sim_client.object_exists(BUCKET, f"wait/{exportable[16]['id']}.zvhd2")
    assert sim_client.wait([jobs[16]], clock=sim_time, sleep=sim_time.sleep) == {jobs[16]: failed}


def test_wait_refuses_bad_arguments_before_sending(sim_client: ImsClient, sent: Any) -> None:
    for arguments in ({"interval": 0}, {"interval": 10, "max_interval": 5}, {"timeout": -1}):
        with pytest.raises(ConfigError):
            sim_client.wait(["job"], **arguments)
    with pytest.raises(ConfigError):
        sim_client.wait([""])
    assert sim_client.wait([]) == {} and len(sent) == 0


def test_an_unknown_job_ends_the_wait_with_the_service_error(sim_client: ImsClient, sim_time: Any) -> None:
    with pytest.raises(ApiError, match="IMG.0086"):
        sim_client.wait(["ff808082000000000000000000000000"], clock=sim_time, sleep=sim_time.sleep)
