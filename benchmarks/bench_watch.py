"""Watch benchmark: 1,000 concurrent export jobs followed to their end by ``watch`` on a fast simulated clock.

    python -m benchmarks.bench_watch [--jobs 1000] [--images 1800] [--time-scale 60] [--interval 5]
                                     [--max-interval 60] [--max-rate 5] [--output PATH]

One embedded simulator (seed 0, ``--images`` images, ``--time-scale`` simulated seconds per real second) holds
the world. The plan is ``plan_exports(client.images(), bucket=BUCKET, key_template=KEY_TEMPLATE, client=client,
profile=SIMULATOR_PROFILE)`` and its first ``--jobs`` exportable rows are launched (``launch`` with
``LAUNCH_CONCURRENCY`` threads, a rate that never binds; timed apart), then followed by ``watch(ledger, ...)``
until every job is final. ``--interval``, ``--max-interval`` and ``--max-rate`` are given in *simulated* time
(the defaults are ``watch``'s own: 5 s, 60 s, 5 requests/s); ``watch`` runs on real time, so it gets them
divided (the intervals) or multiplied (the rate) by the time scale. A batch then costs the requests it would
cost against the real service with those settings, provided the machine keeps up with the scaled rate (the
achieved rate is reported).

A counting ``httpx`` transport under the client sorts every request: job polls, object HEADs (verification),
export POSTs, others. Each job's final state is checked against the simulator's own plan of the job (a FAIL is
``failed``, a SUCCESS ``verified``), so no job can be miscounted.

Baseline, in the same run: a fresh simulator (same seed, so the same world), the same rows launched again, and
``client.wait(job_ids)`` with a fixed interval (``max_interval == interval``) and the same rate cap: no
per-job backoff, no ledger, no verification.

The latest numbers go to ``benchmarks/results/watch.json`` (not in git).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

import ims_nb
from benchmarks import harness
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import launch, plan_exports
from ims_nb.exports.watch import watch
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import SimInfo, Simulator
from ims_nb.vocab import State

BUCKET = "ims-exports-cn-north-4"
KEY_TEMPLATE = "bench-watch/{name}-{id8}.{ext}"
LAUNCH_CONCURRENCY = 16
LAUNCH_RATE = 10_000.0  # requests per real second: never the limit
PACKAGES = ("ims-nb", "httpx", "pandas", "uvicorn")
FINAL_STATES = frozenset({State.VERIFIED, State.SUCCEEDED, State.MISSING, State.FAILED})
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


# --- one batch ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def world(args: argparse.Namespace) -> Iterator[tuple[Simulator, Any, CountingTransport]]:
    """A fresh simulator on the fast clock and a client over a counting transport."""
    with Simulator(seed=0, images=args.images, time_scale=args.time_scale) as sim:
        transport = CountingTransport(httpx.HTTPTransport())
        info: SimInfo = sim.info
        with ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id,
                            endpoint=info.endpoint, transport=transport) as client:  # fmt: skip
            yield sim, client, transport


def plan_rows(client: Any, jobs: int) -> pd.DataFrame:
    """The first ``jobs`` exportable rows of the plan (the simulator judges strictly, caps nothing).

    With the client, so that images shared by other tenants (listed, not exportable) are refused in the plan.
    """
    plan = plan_exports(client.images(), bucket=BUCKET, key_template=KEY_TEMPLATE, client=client,
                        profile=SIMULATOR_PROFILE)  # fmt: skip
    rows = plan[plan["exportable"].fillna(False).astype(bool)].head(jobs)
    assert len(rows) == jobs, f"only {len(rows)} exportable images; raise --images"
    return rows


def launched(
    rows: pd.DataFrame, client: Any, ledger: Ledger, transport: CountingTransport
) -> tuple[list[str], float, dict[str, int]]:
    """Launch the rows; their job ids, the seconds it took, the requests."""
    mark = transport.mark()
    started = time.perf_counter()
    out = launch(rows, client=client, ledger=ledger, concurrency=LAUNCH_CONCURRENCY, max_rate=LAUNCH_RATE)
    seconds = time.perf_counter() - started
    states = out["state"].value_counts().to_dict()
    assert states == {State.SUBMITTED.value: len(rows)}, f"launch did not submit every row: {states}"
    return out["job_id"].tolist(), seconds, counts(transport.since(mark))


def watched(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Launch the batch and ``watch`` the ledger to the end; what it cost and what it found."""
    scale = args.time_scale
    with world(args) as (sim, client, transport), Ledger(tmp / "watch.sqlite") as ledger:
        rows = plan_rows(client, args.jobs)
        job_ids, launch_s, launch_requests = launched(rows, client, ledger, transport)
        mark, since = transport.mark(), time.time()
        started = time.perf_counter()
        frame = watch(ledger, client=client, interval=args.interval / scale, max_interval=args.max_interval / scale,
                      max_rate=args.max_rate * scale, timeout=args.timeout)  # fmt: skip
        wall = time.perf_counter() - started
        entries = transport.since(mark)
        expected = truth(sim, job_ids)
        planned = durations(sim, job_ids)
        timing = poll_timing(entries, sim, job_ids)
        rates = per_second(entries, since, since + wall, args.max_rate * scale)

    states = Counter(frame["state"].astype(str))
    assert len(frame) == args.jobs and set(frame["job_id"]) == set(job_ids), "the ledger lost or gained jobs"
    assert set(states) <= FINAL_STATES, f"jobs not final after the watch: {dict(states)}"
    by_job = dict(zip(frame["job_id"], frame["state"].astype(str), strict=True))
    wrong = [j for j in job_ids if by_job[j] != (State.FAILED if expected[j] == "FAIL" else State.VERIFIED)]
    assert not wrong, f"{len(wrong)} job(s) ended otherwise than the simulator planned, e.g. {wrong[:3]}"
    requests = counts(entries)
    assert requests["verify"] >= states.get(State.VERIFIED, 0), "a verified job was not HEADed"
    span = (frame["end_time"].max() - frame["begin_time"].min()).total_seconds()
    return {
        "jobs": args.jobs,
        "states": {state: states.get(state, 0) for state in sorted(FINAL_STATES)},
        "succeeded": sum(states.get(s, 0) for s in (State.SUCCEEDED, State.VERIFIED, State.MISSING)),
        "verified": states.get(State.VERIFIED, 0),
        "failed": states.get(State.FAILED, 0),
        "launch": {"wall_s": launch_s, "requests": launch_requests},
        "watch": {
            "wall_s": wall,
            "requests": requests,
            "per_job": {kind: requests[kind] / args.jobs for kind in (*KINDS, "total")},
            "achieved_rate_per_real_s": requests["total"] / wall,
            "requests_per_real_second": rates,
            **timing,
        },
        "simulated_span_s": span,
        "ratio_span_over_watch_wall": span / wall,
        "ratio_span_over_launch_plus_watch_wall": span / (launch_s + wall),
        "job_durations_sim": {
            "sum_s": float(frame["duration_s"].sum()),
            "median_s": float(frame["duration_s"].median()),
            "max_s": float(frame["duration_s"].max()),
        },
        "planned_durations_sim": planned,
    }


def waited(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The naive way on a fresh batch: ``client.wait(job_ids)`` at a fixed interval, the same rate cap."""
    scale = args.time_scale
    with world(args) as (sim, client, transport), Ledger(tmp / "wait.sqlite") as ledger:
        rows = plan_rows(client, args.jobs)
        job_ids, launch_s, launch_requests = launched(rows, client, ledger, transport)
        mark, since = transport.mark(), time.time()
        started = time.perf_counter()
        records = client.wait(job_ids, interval=args.interval / scale, max_interval=args.interval / scale,
                              max_rate=args.max_rate * scale, timeout=args.timeout)  # fmt: skip
        wall = time.perf_counter() - started
        entries = transport.since(mark)
        expected = truth(sim, job_ids)
        planned = durations(sim, job_ids)
        timing = poll_timing(entries, sim, job_ids)
        rates = per_second(entries, since, since + wall, args.max_rate * scale)

    statuses = Counter(str(records[j].get("status")) for j in job_ids)
    assert set(statuses) <= {"SUCCESS", "FAIL"}, f"jobs not final after the wait: {dict(statuses)}"
    wrong = [j for j in job_ids if records[j].get("status") != expected[j]]
    assert not wrong, f"{len(wrong)} job(s) ended otherwise than the simulator planned, e.g. {wrong[:3]}"
    requests = counts(entries)
    return {
        "jobs": args.jobs,
        "succeeded": statuses.get("SUCCESS", 0),
        "failed": statuses.get("FAIL", 0),
        "launch": {"wall_s": launch_s, "requests": launch_requests},
        "wait": {
            "wall_s": wall,
            "requests": requests,
            "per_job": {kind: requests[kind] / args.jobs for kind in (*KINDS, "total")},
            "achieved_rate_per_real_s": requests["total"] / wall,
            "requests_per_real_second": rates,
            **timing,
        },
        "planned_durations_sim": planned,
    }


# --- the run ---------------------------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    scale = args.time_scale
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as folder:
        watch_run = watched(args, Path(folder))
        baseline = waited(args, Path(folder))
    per_hour = {
        name: run[phase]["requests"]["poll"] / (run["planned_durations_sim"]["sum_s"] / 3600)
        for name, run, phase in (("watch", watch_run, "watch"), ("baseline", baseline, "wait"))
    }
    return {
        "benchmark": "watch",
        "jobs": args.jobs,
        "images": args.images,
        "bucket": BUCKET,
        "key_template": KEY_TEMPLATE,
        "time_scale": scale,
        "settings_sim": {
            "interval_s": args.interval,
            "max_interval_s": args.max_interval,
            "max_rate_per_s": args.max_rate,
        },  # fmt: skip
        "settings_real": {
            "interval_s": args.interval / scale,
            "max_interval_s": args.max_interval / scale,
            "max_rate_per_s": args.max_rate * scale,
        },  # fmt: skip
        "launch_concurrency": LAUNCH_CONCURRENCY,
        "watch": watch_run,
        "baseline": baseline,
        "polls_per_job_hour": per_hour,
        "ratio_polls_watch_over_baseline": watch_run["watch"]["per_job"]["poll"] / baseline["wait"]["per_job"]["poll"],
        "machine": harness.machine(PACKAGES),
    }


def report(results: dict[str, Any]) -> str:
    w, b = results["watch"], results["baseline"]
    sim, real = results["settings_sim"], results["settings_real"]
    ww, bw = w["watch"], b["wait"]
    lines = [
        f"Watching {results['jobs']:,} concurrent export jobs; simulator at {results['time_scale']:g}x "
        f"({results['images']:,} images); {results['machine']['cpus']} CPUs, Python {results['machine']['python']}",
        f"polling (simulated): interval {sim['interval_s']:g} s, max_interval {sim['max_interval_s']:g} s, "
        f"max_rate {sim['max_rate_per_s']:g}/s  =  (real) {real['interval_s']:.4g} s, {real['max_interval_s']:.4g} s, "
        f"{real['max_rate_per_s']:g}/s",
        "",
        f"launch: {w['launch']['wall_s']:.2f} s for {w['launch']['requests']['export']:,} POSTs "
        f"({LAUNCH_CONCURRENCY} threads)",
        f"outcome: {w['succeeded']} succeeded ({w['verified']} verified), {w['failed']} failed; "
        f"every job final: {', '.join(f'{k} {v}' for k, v in w['states'].items() if v)}",
        "",
        f"{'':<34} {'watch (backoff)':>16} {'wait (fixed)':>14}",
        f"{'polls per job':<34} {ww['per_job']['poll']:>16.2f} {bw['per_job']['poll']:>14.2f}",
        f"{'verification HEADs per job':<34} {ww['per_job']['verify']:>16.2f} {bw['per_job']['verify']:>14.2f}",
        f"{'other requests per job':<34} {ww['per_job']['other']:>16.3f} {bw['per_job']['other']:>14.3f}",
        f"{'requests per job':<34} {ww['per_job']['total']:>16.2f} {bw['per_job']['total']:>14.2f}",
        f"{'polls per simulated job-hour':<34} {results['polls_per_job_hour']['watch']:>16.2f} "
        f"{results['polls_per_job_hour']['baseline']:>14.2f}",
        f"{'share of polls: longest 10 % jobs':<34} {ww['longest_tenth_share_of_polls']:>16.1%} "
        f"{bw['longest_tenth_share_of_polls']:>14.1%}",
        f"{'median gap between polls, sim s':<34} {ww['gap_sim_s']['median']:>16.0f} "
        f"{bw['gap_sim_s']['median']:>14.0f}",
        f"{'end seen after (median), sim s':<34} {ww['seen_final_after_sim_s']['median']:>16.0f} "
        f"{bw['seen_final_after_sim_s']['median']:>14.0f}",
        f"{'end seen after (p90), sim s':<34} {ww['seen_final_after_sim_s']['p90']:>16.0f} "
        f"{bw['seen_final_after_sim_s']['p90']:>14.0f}",
        f"{'wall s':<34} {ww['wall_s']:>16.2f} {bw['wall_s']:>14.2f}",
        f"{'requests per real s (mean)':<34} {ww['achieved_rate_per_real_s']:>16.0f} "
        f"{bw['achieved_rate_per_real_s']:>14.0f}",
        f"{'requests per real s (busiest s)':<34} {ww['requests_per_real_second']['max']:>16.0f} "
        f"{bw['requests_per_real_second']['max']:>14.0f}",
        f"{'seconds at >= 90 % of the cap':<34} {ww['requests_per_real_second']['at_cap']:>16} "
        f"{bw['requests_per_real_second']['at_cap']:>14}",
        f"{'sum of job durations, sim h':<34} {w['job_durations_sim']['sum_s'] / 3600:>16.1f} "
        f"{b['planned_durations_sim']['sum_s'] / 3600:>14.1f}",
        f"{'longest job, sim s':<34} {w['job_durations_sim']['max_s']:>16,.0f} "
        f"{b['planned_durations_sim']['max_s']:>14,.0f}",
        "",
        f"watch: simulated span {w['simulated_span_s']:,.0f} s (first submit to last end; longest job "
        f"{w['job_durations_sim']['max_s']:,.0f} s, median {w['job_durations_sim']['median_s']:,.0f} s) in "
        f"{ww['wall_s']:.1f} s of watching: {w['ratio_span_over_watch_wall']:.1f}x "
        f"({w['ratio_span_over_launch_plus_watch_wall']:.1f}x counting the launch)",
        f"polls watch / wait: {results['ratio_polls_watch_over_baseline']:.3f}",
    ]
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=1000, help="concurrent export jobs (default 1000)")
    parser.add_argument("--images", type=int, default=1800, help="images in the simulator (default 1800)")
    parser.add_argument("--time-scale", type=float, default=60.0, help="simulated s per real s (default 60)")
    harness.polling_options(parser)
    parser.add_argument("--timeout", type=float, default=900.0, help="real s each watch may take (default 900)")


def check(args: argparse.Namespace) -> str | None:
    if args.jobs < 1 or args.time_scale <= 0 or not 0 < args.interval <= args.max_interval or args.max_rate <= 0:
        return "need --jobs >= 1, --time-scale > 0, 0 < --interval <= --max-interval, --max-rate > 0"
    return None


BENCH = harness.Bench("watch", __doc__, options, run_benchmark, report, check)

main = partial(harness.main, BENCH)  # main(argv) -> exit status


if __name__ == "__main__":
    harness.run_module(BENCH)
