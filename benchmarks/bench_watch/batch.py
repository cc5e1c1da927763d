"""One batch of the watch benchmark: a fresh world, the plan's first rows launched, then followed to their end."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

import ims_nb
from benchmarks.bench_watch.counting import (
    KINDS,
    CountingTransport,
    counts,
    durations,
    per_second,
    poll_timing,
    truth,
)
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import watch
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import SimInfo, Simulator
from ims_nb.vocab import State

BUCKET = "ims-exports-cn-north-4"
KEY_TEMPLATE = "bench-watch/{name}-{id8}.{ext}"
LAUNCH_CONCURRENCY = 16
LAUNCH_RATE = 10_000.0  # requests per real second: never the limit
FINAL_STATES = frozenset({State.VERIFIED, State.SUCCEEDED, State.MISSING, State.FAILED})

#: How a batch is followed: (client, ledger, job ids) -> what the follower answers.
Follow = Callable[[Any, Ledger, list[str]], Any]


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


@dataclass(frozen=True)
class Followed:
    """A batch launched and followed: the follower's answer, the simulator's plan and what each phase cost."""

    job_ids: list[str]
    answer: Any
    expected: dict[str, str]  # job id -> SUCCESS or FAIL, as the simulator planned it
    planned: dict[str, float]  # the planned durations
    launch: dict[str, Any]
    phase: dict[str, Any]  # the follow phase: wall time, requests, rates and poll timing


def followed(args: argparse.Namespace, ledger_path: Path, follow: Follow) -> Followed:
    """Launch a fresh batch and ``follow`` it; what it cost, measured on the counting transport."""
    cap = args.max_rate * args.time_scale
    with world(args) as (sim, client, transport), Ledger(ledger_path) as ledger:
        rows = plan_rows(client, args.jobs)
        job_ids, launch_s, launch_requests = launched(rows, client, ledger, transport)
        mark, since = transport.mark(), time.time()
        started = time.perf_counter()
        answer = follow(client, ledger, job_ids)
        wall = time.perf_counter() - started
        entries = transport.since(mark)
        expected, planned = truth(sim, job_ids), durations(sim, job_ids)
        timing = poll_timing(entries, sim, job_ids)
        rates = per_second(entries, since, since + wall, cap)
    requests = counts(entries)
    phase = {
        "wall_s": wall,
        "requests": requests,
        "per_job": {kind: requests[kind] / args.jobs for kind in (*KINDS, "total")},
        "achieved_rate_per_real_s": requests["total"] / wall,
        "requests_per_real_second": rates,
        **timing,
    }
    return Followed(job_ids, answer, expected, planned, {"wall_s": launch_s, "requests": launch_requests}, phase)


def watched(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Launch the batch and ``watch`` the ledger to the end; what it cost and what it found."""
    scale = args.time_scale

    def follow(client: Any, ledger: Ledger, job_ids: list[str]) -> pd.DataFrame:
        return watch(ledger, client=client, interval=args.interval / scale, max_interval=args.max_interval / scale,
                     max_rate=args.max_rate * scale, timeout=args.timeout)  # fmt: skip

    run = followed(args, tmp / "watch.sqlite", follow)
    frame, job_ids = run.answer, run.job_ids
    states = Counter(frame["state"].astype(str))
    assert len(frame) == args.jobs and set(frame["job_id"]) == set(job_ids), "the ledger lost or gained jobs"
    assert set(states) <= FINAL_STATES, f"jobs not final after the watch: {dict(states)}"
    by_job = dict(zip(frame["job_id"], frame["state"].astype(str), strict=True))
    wrong = [j for j in job_ids if by_job[j] != (State.FAILED if run.expected[j] == "FAIL" else State.VERIFIED)]
    assert not wrong, f"{len(wrong)} job(s) ended otherwise than the simulator planned, e.g. {wrong[:3]}"
    assert run.phase["requests"]["verify"] >= states.get(State.VERIFIED, 0), "a verified job was not HEADed"
    span = (frame["end_time"].max() - frame["begin_time"].min()).total_seconds()
    wall = run.phase["wall_s"]
    return {
        "jobs": args.jobs,
        "states": {state: states.get(state, 0) for state in sorted(FINAL_STATES)},
        "succeeded": sum(states.get(s, 0) for s in (State.SUCCEEDED, State.VERIFIED, State.MISSING)),
        "verified": states.get(State.VERIFIED, 0),
        "failed": states.get(State.FAILED, 0),
        "launch": run.launch,
        "watch": run.phase,
        "simulated_span_s": span,
        "ratio_span_over_watch_wall": span / wall,
        "ratio_span_over_launch_plus_watch_wall": span / (run.launch["wall_s"] + wall),
        "job_durations_sim": {
            "sum_s": float(frame["duration_s"].sum()),
            "median_s": float(frame["duration_s"].median()),
            "max_s": float(frame["duration_s"].max()),
        },
        "planned_durations_sim": run.planned,
    }


def waited(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """The naive way on a fresh batch: ``client.wait(job_ids)`` at a fixed interval, the same rate cap."""
    scale = args.time_scale

    def follow(client: Any, ledger: Ledger, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        return client.wait(job_ids, interval=args.interval / scale, max_interval=args.interval / scale,
                           max_rate=args.max_rate * scale, timeout=args.timeout)  # fmt: skip

    run = followed(args, tmp / "wait.sqlite", follow)
    records, job_ids = run.answer, run.job_ids
    statuses = Counter(str(records[j].get("status")) for j in job_ids)
    assert set(statuses) <= {"SUCCESS", "FAIL"}, f"jobs not final after the wait: {dict(statuses)}"
    wrong = [j for j in job_ids if records[j].get("status") != run.expected[j]]
    assert not wrong, f"{len(wrong)} job(s) ended otherwise than the simulator planned, e.g. {wrong[:3]}"
    return {
        "jobs": args.jobs,
        "succeeded": statuses.get("SUCCESS", 0),
        "failed": statuses.get("FAIL", 0),
        "launch": run.launch,
        "wait": run.phase,
        "planned_durations_sim": run.planned,
    }
