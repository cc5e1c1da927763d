"""Export jobs: a stated duration model, and the job's state derived from the clock when read."""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass
from typing import Any

from ims_nb.sim.clock import iso_millis

JOB_TYPE = "imsNativeExportImageJob"
GiB = 1024**3

#: Sustained export throughput in GiB per hour, by output format ("zvhd2" is fast export).
THROUGHPUT_GIB_PER_HOUR = {"qcow2": 90.0, "vhd": 110.0, "zvhd": 100.0, "vmdk": 80.0, "zvhd2": 450.0}
#: Exported file size as a share of the image size, by output format.
OUTPUT_RATIO = {"qcow2": 0.62, "vhd": 1.0, "zvhd": 0.55, "vmdk": 0.97, "zvhd2": 0.5}
QUEUE_SECONDS = (15.0, 240.0)
FAILURE_RATE = 0.04
FAILURES = (
    ("IMG.0069", "The OBS bucket became inaccessible while the image file was being written."),
    ("IMG.0071", "Export failed: the backend storage task was interrupted. Try again later."),
    ("IMG.0060", "Export failed: the number of tasks exceeds the flow control limit."),
)


@dataclass(frozen=True)
class JobPlan:
    """Everything fixed when an export is accepted; the job's state is a function of it and time."""

    job_id: str
    image_id: str
    image_name: str
    bucket: str
    key: str
    file_format: str  # qcow2 | vhd | zvhd | vmdk | zvhd2 (fast export)
    quick: bool
    image_size: int
    submitted_at: float
    started_at: float
    planned_end: float  # when the job would end had it not failed
    finished_at: float  # when it does end (earlier than planned_end for a failure)
    fail_code: str | None
    fail_reason: str | None
    output_size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobPlan:
        return cls(**data)

    def status_at(self, now: float) -> str:
        if now < self.started_at:
            return "INIT"
        if now < self.finished_at:
            return "RUNNING"
        return "FAIL" if self.fail_code else "SUCCESS"

    def percent_at(self, now: float) -> float:
        if now <= self.started_at:
            return 0.0
        if now >= self.finished_at:
            return 100.0 if not self.fail_code else self._percent(self.finished_at)
        return self._percent(now)

    def _percent(self, now: float) -> float:
        span = self.planned_end - self.started_at
        return round(min(99.0, 100.0 * (now - self.started_at) / span), 1)

    def view(self, now: float, *, progress: bool) -> dict[str, Any]:
        """The ShowJob (or, with ``progress``, ShowJobProgress) response body at ``now``."""
        status = self.status_at(now)
        done = status in ("SUCCESS", "FAIL")
        entities: dict[str, Any] = {"image_id": self.image_id, "image_name": self.image_name}
        if progress:
            entities["process_percent"] = self.percent_at(now)
            entities["current_task"] = _current_task(status, self.quick)
            entities["subJobId"] = self.sub_job_id
        elif status != "INIT":
            entities["sub_jobs_list"] = [self.sub_job_id]
        return {
            "status": status,
            "job_id": self.job_id,
            "job_type": JOB_TYPE,
            "begin_time": iso_millis(self.submitted_at),
            "end_time": iso_millis(self.finished_at) if done else None,
            "error_code": self.fail_code if status == "FAIL" else None,
            "fail_reason": self.fail_reason if status == "FAIL" else None,
            "entities": entities,
        }

    @property
    def sub_job_id(self) -> str:
        return hashlib.sha256(f"sub:{self.job_id}".encode()).hexdigest()[:32]


def _current_task(status: str, quick: bool) -> str:
    if status == "INIT":
        return "waiting"
    sub = "imsQuickExportImageJob" if quick else "imsGoofysExportImageJob"
    return sub if status == "RUNNING" else ""


def plan_job(
    *,
    seed: int | str,
    sequence: int,
    image: dict[str, Any],
    bucket: str,
    key: str,
    file_format: str,
    quick: bool,
    now: float,
) -> JobPlan:
    """Decide, deterministically from the seed and the job's sequence number, how a job will run.

    Duration = a queue wait (uniform 15-240 s) + image size / per-format throughput (x0.8-1.25);
    a ``FAILURE_RATE`` share of jobs fail part-way with a real error code and reason.
    """
    rng = random.Random(f"job:{seed}:{sequence}")
    job_id = "ff808082" + hashlib.sha256(f"job-id:{seed}:{sequence}".encode()).hexdigest()[:24]
    size = int(image["__image_size"])
    output = "zvhd2" if quick else file_format
    queue = rng.uniform(*QUEUE_SECONDS)
    run = size / GiB / (THROUGHPUT_GIB_PER_HOUR[output] * rng.uniform(0.8, 1.25)) * 3600
    run = max(run, 20.0)
    started = now + queue
    fail_code = fail_reason = None
    finished = started + run
    if rng.random() < FAILURE_RATE:
        fail_code, fail_reason = rng.choice(FAILURES)
        finished = started + run * rng.uniform(0.15, 0.9)
    output_size = int(size * OUTPUT_RATIO[output] * rng.uniform(0.9, 1.05))
    return JobPlan(
        job_id=job_id,
        image_id=image["id"],
        image_name=image["name"],
        bucket=bucket,
        key=key,
        file_format=output,
        quick=quick,
        image_size=size,
        submitted_at=now,
        started_at=started,
        planned_end=started + run,
        finished_at=finished,
        fail_code=fail_code,
        fail_reason=fail_reason,
        output_size=output_size,
    )
