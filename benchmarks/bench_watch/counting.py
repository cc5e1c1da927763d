"""The watch benchmark's counts: every request sorted by kind, and the simulator's own plan of every job."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from ims_nb.sim import Simulator

POLL_PREFIX = "/v1/cloudimages/job/"
KINDS = ("poll", "verify", "export", "other")


# --- counting requests ------------------------------------------------------------------------------


class CountingTransport(httpx.BaseTransport):
    """Passes every request on to ``inner`` and notes (kind, job id, real time of the answer) of each.

    Kinds: ``poll`` (GET of a job's progress or status), ``verify`` (HEAD of an object), ``export`` (the POST
    that starts one), ``other`` (anything else: bucket HEADs, signature negotiation, project look-ups).
    Retries are counted too: each is a request the service sees.
    """

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.log: list[tuple[str, str | None, float]] = []
        self._lock = threading.Lock()

    @staticmethod
    def classify(request: httpx.Request) -> tuple[str, str | None]:
        path, method = request.url.path, request.method
        if method == "GET" and path.startswith(POLL_PREFIX):
            return "poll", path[len(POLL_PREFIX) :]
        parts = path.strip("/").split("/")
        if method == "GET" and len(parts) == 4 and parts[0] == "v1" and parts[2] == "jobs":
            return "poll", parts[3]
        if method == "POST" and path.endswith("/file"):
            return "export", None
        if method == "HEAD" and len(parts) >= 2 and not request.url.query:
            return "verify", None
        return "other", None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        kind, job_id = self.classify(request)
        try:
            return self.inner.handle_request(request)
        finally:  # when the answer came: a job seen final then had ended by then
            with self._lock:
                self.log.append((kind, job_id, time.time()))

    def close(self) -> None:
        self.inner.close()

    def mark(self) -> int:
        """Where the log stands now: the start of a phase."""
        with self._lock:
            return len(self.log)

    def since(self, mark: int) -> list[tuple[str, str | None, float]]:
        with self._lock:
            return self.log[mark:]


def counts(entries: Sequence[tuple[str, str | None, float]]) -> dict[str, int]:
    found = Counter(kind for kind, _, _ in entries)
    return {kind: found.get(kind, 0) for kind in KINDS} | {"total": len(entries)}


# --- the simulator's side: its clock and its plan of every job ---------------------------------------


def sim_time(sim: Simulator) -> Callable[[float], float]:
    """Real POSIX time -> the simulator's time (its clock is real time times the scale from an anchor)."""
    state = sim.backend.clock.state
    return lambda real: state.sim_anchor + (real - state.real_anchor) * state.scale


def poll_timing(
    entries: Sequence[tuple[str, str | None, float]], sim: Simulator, job_ids: Sequence[str]
) -> dict[str, Any]:
    """Per job: polls, the simulated gaps between them, and how long after its end the last poll saw it."""
    to_sim = sim_time(sim)
    by_job: dict[str, list[float]] = defaultdict(list)
    for kind, job_id, real in entries:
        if kind == "poll" and job_id is not None:
            by_job[job_id].append(to_sim(real))
    unpolled = [j for j in job_ids if j not in by_job]
    assert not unpolled, f"{len(unpolled)} job(s) never polled, e.g. {unpolled[:3]}"
    per_job = [len(by_job[j]) for j in job_ids]
    gaps = [b - a for j in job_ids for a, b in zip(by_job[j], by_job[j][1:], strict=False)]
    lags = [by_job[j][-1] - sim.backend.jobs[j].finished_at for j in job_ids]
    jobs = sim.backend.jobs
    longest = sorted(job_ids, key=lambda j: jobs[j].finished_at - jobs[j].submitted_at)[-max(1, len(job_ids) // 10) :]
    return {
        "polls_per_job": quantiles(per_job),
        "longest_tenth_share_of_polls": sum(len(by_job[j]) for j in longest) / sum(per_job),
        "gap_sim_s": quantiles(gaps),
        "seen_final_after_sim_s": quantiles(lags),
    }


def per_second(
    entries: Sequence[tuple[str, str | None, float]], started: float, ended: float, cap: float
) -> dict[str, float]:
    """Requests in each whole real second of a phase, and how many seconds came near the rate cap.

    A busiest second well under the cap means the machine, not the cap, set the pace.
    """
    seconds = int(ended - started)
    if seconds < 1:
        return {"n": 0, "max": 0.0, "at_cap": 0}
    found = Counter(int(real - started) for _, _, real in entries)
    each = [found.get(second, 0) for second in range(seconds)]
    return quantiles(each) | {"at_cap": sum(n >= 0.9 * cap for n in each)}


def quantiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "min": float(ordered[0]),
        "median": float(statistics.median(ordered)),
        "p90": float(ordered[int(0.9 * (len(ordered) - 1))]),
        "max": float(ordered[-1]),
        "mean": float(statistics.fmean(ordered)),
    }


def truth(sim: Simulator, job_ids: Sequence[str]) -> dict[str, str]:
    """Job id -> how the simulator planned it to end (SUCCESS or FAIL)."""
    return {j: "FAIL" if sim.backend.jobs[j].fail_code else "SUCCESS" for j in job_ids}


def durations(sim: Simulator, job_ids: Sequence[str]) -> dict[str, float]:
    """The simulated durations (submit to end) as the simulator planned them."""
    seconds = [sim.backend.jobs[j].finished_at - sim.backend.jobs[j].submitted_at for j in job_ids]
    return {"sum_s": sum(seconds), "median_s": statistics.median(seconds), "max_s": max(seconds)}
