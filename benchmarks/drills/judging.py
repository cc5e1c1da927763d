"""How the drills and the crash test judge an export batch: by the simulator's own record, on its simulated clock."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx

from ims_nb.exports.launch import JOB_ID_UNKNOWN
from ims_nb.vocab import LIVE, State


class SimClock:
    """The watch's clock: ``sleep`` advances the simulator's manual clock instead of waiting."""

    def __init__(self, control: httpx.Client) -> None:
        self.control = control
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.now += seconds
            self.control.post("/clock", json={"advance": seconds}).raise_for_status()


def judge_batch(
    wanted: Sequence[str], planned: Sequence[str], jobs: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]
) -> list[str]:
    """Exactly once by the service's record, and a ledger that holds every job (see the module docstring)."""
    problems = []
    if sorted(planned) != sorted(wanted):
        problems.append(f"the plan marks {len(planned)} of {len(wanted)} exportable images exportable")
    per_image = Counter(j["entities"]["image_id"] for j in jobs)
    rows_per_image = Counter(r["image_id"] for r in rows)
    for text, found in (
        ("exported more than once", [i for i, n in per_image.items() if n > 1]),
        ("never exported", [i for i in wanted if not per_image[i]]),
        ("exported but not planned", list(set(per_image) - set(wanted))),
        ("without exactly one ledger row", [i for i in wanted if rows_per_image[i] != 1]),
    ):
        if found:
            problems.append(f"{len(found)} image(s) {text}")
    problems += judge_ledger(jobs, rows)
    return problems


def judge_ledger(jobs: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every row final and verified; job ids are the service's; the jobs the ledger lacks are its noted rows."""
    problems = []
    live = [r for r in rows if r["state"] in LIVE]
    if live:
        problems.append(f"{len(live)} row(s) still live")
    unfinished = Counter(r["state"] for r in rows if r["state"] != State.VERIFIED)
    if unfinished:
        problems.append(f"rows not verified: {dict(unfinished)}")
    known = {r["job_id"] for r in rows if r["job_id"]}
    issued = {j["job_id"] for j in jobs}
    if known - issued:
        problems.append(f"{len(known - issued)} ledger job id(s) the service never issued")
    noted = [r for r in rows if not r["job_id"] and JOB_ID_UNKNOWN in (r["note"] or "")]
    silent = [r for r in rows if not r["job_id"] and JOB_ID_UNKNOWN not in (r["note"] or "")]
    if silent:
        problems.append(f"{len(silent)} row(s) without a job id or a '{JOB_ID_UNKNOWN}' note")
    unrecorded = Counter(j["bucket_url"] for j in jobs if j["job_id"] not in known)
    if unrecorded != Counter(r["bucket_url"] for r in noted):
        problems.append(f"{sum(unrecorded.values())} job(s) missing from the ledger, {len(noted)} row(s) noted lost")
    return problems
