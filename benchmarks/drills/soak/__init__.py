"""Soak: a simulated day of export batches against a 100,000-image simulator while a watcher process polls.

    python -m benchmarks.drills.soak [--images 100000] [--jobs 5000] [--time-scale 240] [--duration 86400]
                              [--launch-for 75600] [--batches 85] [--sample-every 2] [--output PATH]

Three processes. ``ims-nb sim --images N --time-scale S`` (seed 0) is the cloud. A watcher (``... soak watcher``,
started with the simulator's JSON line on its stdin) runs ``ims_nb.watch(ledger, client=..., on_progress=...)``
over the soak's ledger round after round until told to stop, as an operator's ``ims-nb jobs --watch`` with
progress bars would (each report works out an ETA). This process (the driver) lists the inventory once, then
every ``launch_for / (batches - 1)`` simulated seconds plans the next images with ``plan_exports(...,
client=client)`` and launches the batch's exportable rows with ``launch`` into the same ledger (SQLite, WAL:
two processes share it). The simulator refuses a second export of an image while one runs (IMG.0148), so each
job has its own image: 100,000 images hold some 57,000 exportable ones. The batches are spread over the first
``--launch-for`` simulated seconds; the soak then runs on until the simulated ``--duration`` has passed and
every job is final.

Every ``--sample-every`` real seconds the resident set (``VmRSS`` from ``/proc/<pid>/status``) and the CPU time
of the simulator, the watcher and the driver are sampled; memory is flat when the end RSS of the simulator and
of the watcher is below start x 1.5 + 50 MiB. The watcher and the driver count their requests by kind and
answer with a counting ``httpx`` transport beneath the client, so retries count too (only counters are kept:
the counting costs no memory). A request *fails* when it raised a transport error or got 429, 5xx or any 4xx
but the 404 of a HEAD for an object that does not exist yet (planning checks each target before the export).

At the end the ledger is compared with the simulator's own record (``GET /_sim/state``): every job there is in
the ledger exactly once with the same status, error code and end time, every ledger row's job exists there,
no row is left ``missing`` or live, and the counts per status agree. The polling settings are ``watch``'s
defaults taken as simulated time (5 s, 60 s, 5 requests/s), divided or multiplied by the time scale as in
``benchmarks/bench_watch``; the achieved request rate is reported. The exit status is 1 unless memory stayed flat, no
request failed and the ledger matched.

The results go to ``benchmarks/results/soak.json`` (not in git). Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from benchmarks import harness
from benchmarks.drills.soak.driver import batch_sizes, drive, settle
from benchmarks.drills.soak.probes import CountingTransport, Sampler, SimClock, flat, memory, rss_bytes
from benchmarks.drills.soak.processes import run_watcher, simulator, watcher, watcher_parser
from ims_nb.exports.ledger import Ledger
from ims_nb.vocab import State

__all__ = ["BENCH", "CountingTransport", "batch_sizes", "compare", "flat", "main", "rss_bytes"]

#: How each final status of the simulator must end in the ledger.
LEDGER_STATE_FOR = {"SUCCESS": State.VERIFIED.value, "FAIL": State.FAILED.value}


# --- the verdict ------------------------------------------------------------------------------------


def compare(sim_jobs: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ledger against the simulator's record of every job; ``match`` only when they agree exactly."""
    by_job: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_job.setdefault(row["job_id"] or "", []).append(row)
    known = {job["job_id"]: job for job in sim_jobs}
    absent = [j for j in known if j not in by_job]
    twice = [j for j, found in by_job.items() if len(found) > 1]
    unknown = [j or "<no job id>" for j in by_job if j not in known]
    differ = []
    for job_id, job in known.items():
        row = by_job.get(job_id, [None])[0]
        if row is None:
            continue
        theirs = (job["status"], job.get("error_code"), job.get("end_time"), LEDGER_STATE_FOR.get(job["status"]))
        ours = (row["status"], row["error_code"], row["end_time"], row["state"])
        if theirs != ours:
            differ.append({"job_id": job_id, "simulator": theirs, "ledger": ours})
    sim_counts = Counter(job["status"] for job in sim_jobs)
    ledger_counts = Counter(row["status"] for row in rows)
    states = Counter(row["state"] for row in rows)
    problems = len(absent) + len(twice) + len(unknown) + len(differ)
    return {"match": problems == 0 and sim_counts == ledger_counts, "simulator_jobs": len(sim_jobs),
            "ledger_rows": len(rows), "simulator_statuses": dict(sim_counts), "ledger_statuses": dict(ledger_counts),
            "ledger_states": dict(states), "absent_from_ledger": absent[:10], "in_ledger_twice": twice[:10],
            "unknown_to_simulator": unknown[:10], "differing": differ[:10], "differing_count": len(differ)}  # fmt: skip


def seen_after(sim_jobs: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], clock: SimClock) -> dict[str, Any]:
    """How long after its end (simulated s) each job's final state reached the ledger: is the watcher keeping up?"""
    ended = {job["job_id"]: job["end_time"] for job in sim_jobs if job.get("end_time")}
    pairs = [(ended[r["job_id"]], clock.at(r["updated_at"])) for r in rows if r["job_id"] in ended]
    if not pairs:
        return {"n": 0}
    ends = pd.to_datetime(pd.Series([end for end, _ in pairs]), utc=True, format="ISO8601")
    lags = pd.Series([seen for _, seen in pairs]) - ends.map(lambda t: t.timestamp())
    return {"n": len(lags), "median": float(lags.median()), "p90": float(lags.quantile(0.9)),
            "max": float(lags.max()), "min": float(lags.min())}  # fmt: skip


def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    scale = args.time_scale
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ims-nb-soak-") as name:
        folder = Path(name)
        with simulator(args.images, scale, folder / "sim.log") as (sim, info):
            clock = SimClock.of(info["endpoint"], scale)
            with watcher(info, args, folder) as watcher_process, Ledger(folder / "ledger.sqlite") as ledger:
                children = (sim, watcher_process)
                pids = {"simulator": sim.pid, "watcher": watcher_process.pid, "driver": os.getpid()}
                with Sampler(pids, args.sample_every, clock) as sampler:
                    sampler.sample()
                    driven = drive(args, info, clock, ledger, children)
                    end = driven["first_launch_sim"] + args.duration
                    settle(args, clock, ledger, end, children)
                    sampler.sample()
                (folder / "stop").touch()
                watcher_process.wait(args.timeout)
                watched = json.loads((folder / "watcher.json").read_text())
                state = httpx.get(f"{info['endpoint']}/_sim/state", timeout=60).raise_for_status().json()
                rows = ledger.rows()
                verdict = compare(state["jobs"], rows)
                lag = seen_after(state["jobs"], rows, clock)
    samples = sampler.samples
    span = samples[-1]["sim"] - driven["first_launch_sim"]
    requests = {"driver": driven.pop("requests"), "watcher": watched["requests"]}
    return {
        "benchmark": "soak", "images": args.images, "jobs": args.jobs, "time_scale": scale,
        "duration_sim_s": args.duration, "launch_for_sim_s": args.launch_for, "simulated_span_s": span,
        "settings_sim": {"interval_s": args.interval, "max_interval_s": args.max_interval,
                         "max_rate_per_s": args.max_rate},
        "wall_s": time.perf_counter() - wall,
        "memory": {name: memory(samples, name) for name in pids},
        "memory_flat": {name: flat(memory(samples, name)) for name in ("simulator", "watcher")},
        "cpu_s": {name: (samples[-1]["cpu"][name] or 0.0) - (samples[0]["cpu"][name] or 0.0) for name in pids},
        "requests": requests,
        "failed_requests": requests["driver"]["failed"] + requests["watcher"]["failed"],
        "watcher": {"rounds": watched["rounds"], "wall_s": watched["wall_s"], "progress": watched["progress"],
                    "achieved_rate_per_real_s": watched["requests"]["total"] / watched["wall_s"]},
        "driver": driven,
        "ledger_vs_simulator": verdict,
        "seen_final_after_sim_s": lag,
        "samples": [{k: v for k, v in s.items() if k != "real"} | {"t": s["real"] - samples[0]["real"]}
                    for s in samples],
        "machine": harness.machine(),
    }  # fmt: skip


def report(results: dict[str, Any]) -> str:
    mem, verdict, requests = results["memory"], results["ledger_vs_simulator"], results["requests"]
    lag = results["seen_final_after_sim_s"]
    lines = [
        f"Soak: {results['jobs']:,} exports, {results['images']:,} images, a {results['time_scale']:g}x clock, "
        f"{results['duration_sim_s'] / 3600:g} simulated h (span {results['simulated_span_s'] / 3600:.2f} h) in "
        f"{results['wall_s']:.0f} s wall; {results['driver']['batches']} batches, one every "
        f"{results['driver']['batch_every_sim_s'] / 60:.0f} simulated min",
        "",
        f"{'RSS MiB':<12} {'start':>8} {'mid':>8} {'end':>8} {'peak':>8} {'growth':>8}  flat",
    ]
    for name in ("simulator", "watcher", "driver"):
        m = mem[name]
        verdict_flat = results["memory_flat"].get(name)
        lines.append(f"{name:<12} {m['start_mib']:>8.1f} {m['mid_mib']:>8.1f} {m['end_mib']:>8.1f} "
                     f"{m['peak_mib']:>8.1f} {m['growth_mib']:>+8.1f}  "
                     f"{'' if verdict_flat is None else 'yes' if verdict_flat else 'NO'}")  # fmt: skip
    lines += [
        "",
        f"requests: driver {requests['driver']['total']:,} {requests['driver']['by_kind']}, "
        f"watcher {requests['watcher']['total']:,} {requests['watcher']['by_kind']}",
        f"failed requests: {results['failed_requests']} "
        f"{requests['driver']['failed_examples'] + requests['watcher']['failed_examples']}",
        f"watcher: {results['watcher']['rounds']} watch round(s), {results['watcher']['achieved_rate_per_real_s']:.0f} "
        f"requests per real s, {results['watcher']['progress']} progress reports",
        "CPU s: " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in results["cpu_s"].items()),
        f"jobs per final status: simulator {verdict['simulator_statuses']}, ledger {verdict['ledger_statuses']}, "
        f"ledger states {verdict['ledger_states']}",
        f"a job's end reached the ledger after (simulated s): median {lag['median']:.0f}, p90 {lag['p90']:.0f}, "
        f"max {lag['max']:.0f}",
        f"ledger vs simulator: {'exact match' if verdict['match'] else 'MISMATCH'} "
        f"({verdict['simulator_jobs']:,} jobs, {verdict['ledger_rows']:,} rows)",
    ]
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=100_000, help="images in the simulator (default 100000)")
    parser.add_argument("--jobs", type=int, default=5000, help="export jobs in all (default 5000)")
    parser.add_argument("--time-scale", type=float, default=240.0, help="simulated s per real s (default 240)")
    parser.add_argument("--duration", type=float, default=86_400.0, help="simulated s to run (default a day)")
    parser.add_argument("--launch-for", type=float, default=75_600.0, help="simulated s over which batches start")
    parser.add_argument("--batches", type=int, default=85, help="export batches (default 85: every 15 min)")
    harness.polling_options(parser)
    parser.add_argument("--sample-every", type=float, default=2.0, help="real s between RSS samples (default 2)")
    parser.add_argument("--timeout", type=float, default=600.0, help="real s to wait for jobs after the day")


def check(args: argparse.Namespace) -> str | None:
    if not (args.jobs >= 1 and args.batches >= 1 and args.time_scale > 0 and 0 <= args.launch_for <= args.duration
            and 0 < args.interval <= args.max_interval and args.max_rate > 0):  # fmt: skip
        return ("need --jobs, --batches >= 1, --time-scale > 0, 0 <= --launch-for <= --duration, "
                "0 < --interval <= --max-interval, --max-rate > 0")  # fmt: skip
    return None


def status(results: dict[str, Any]) -> int:
    """1 unless the ledger matched, no request failed and memory stayed flat."""
    ok = results["ledger_vs_simulator"]["match"] and not results["failed_requests"]
    return 0 if ok and all(results["memory_flat"].values()) else 1


BENCH = harness.Bench("soak", __doc__, options, run_soak, report, check, status)


def main(argv: Sequence[str] | None = None) -> int:
    """The soak (the driver), or with ``watcher`` first, the watcher process it starts."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["watcher"]:
        return run_watcher(watcher_parser().parse_args(argv[1:]))
    return harness.main(BENCH, argv)
