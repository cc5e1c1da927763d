"""Watchers benchmark: several watches of one batch send the job polls of one (one watcher per job).

    python -m benchmarks.bench_watchers [--jobs 500] [--watchers 5] [--images 1000]
                                        [--interval 5] [--max-interval 60] [--max-rate 5] [--ledger URL]
                                        [--output PATH]

Two runs on the same world (a fresh simulator each, seed 0, ``--images`` images, manual clock): the first
``--jobs`` exportable rows of the plan are launched (``bench_watch``'s plan), then ``watch(ledger, ...)`` follows
them to the end, first alone, then ``--watchers`` watches at once (threads, each with its own ``Ledger`` object
and client, started together). The watches share one simulated clock (``LockStep``): time moves only when every
watch sleeps, to the earliest wake, and moves the simulator's clock with it, so a run costs the requests it
would cost in real time, without the noise of a loaded machine (each run is the same on every machine) and
without waiting. The simulator counts the job-status requests it receives (``GET /_sim/requests``, route
``GET /v1/cloudimages/job/{job_id}``); the figure is the ratio of the shared run's polls to the single watch's
(goal: at most ``GOAL``). The ledger is a new SQLite file per run, or ``--ledger postgresql://...`` (the run's
rows are deleted before each run, so give it a database of its own). Each run checks that every job ends in
the state the simulator planned and that no row keeps a watcher. The numbers go to
``benchmarks/results/watchers.json`` (not in git).
"""

from __future__ import annotations

import argparse
import heapq
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete

import ims_nb
from benchmarks import harness
from benchmarks.bench_watch.batch import plan_rows
from ims_nb.client import ImsClient
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.tables import exports, leases
from ims_nb.exports.watch import watch
from ims_nb.sim import Simulator
from ims_nb.vocab import LIVE

#: The route of the job-status polls, as the simulator counts it.
JOB_POLL = "GET /v1/cloudimages/job/{job_id}"
#: At most this many job polls for the shared run per poll of the single watch.
GOAL = 1.1


def job_polls(sim: Simulator) -> int:
    """The job-status requests the simulator received since its last reset."""
    counts: dict[str, int] = httpx.get(f"{sim.endpoint}/_sim/requests").raise_for_status().json()["requests"]
    return counts.get(JOB_POLL, 0)


def connect_to(sim: Simulator) -> ImsClient:
    info = sim.info
    return ims_nb.connect(info.region, ak=info.ak, sk=info.sk, project_id=info.project_id, endpoint=info.endpoint)


def launch_batch(sim: Simulator, where: str, jobs: int) -> list[str]:
    """Launch the plan's first ``jobs`` exportable rows into the ledger at ``where``, one by one (the simulator
    numbers jobs in the order it receives them, and plans each by its number: the same batch on every run)."""
    with connect_to(sim) as client, Ledger(where) as ledger:
        out = launch(plan_rows(client, jobs), client=client, ledger=ledger, concurrency=1, max_rate=10_000.0)
    return [str(job_id) for job_id in out["job_id"]]


class LockStep:
    """One simulated clock for several threads: ``sleep`` blocks until every thread sleeps (or is done), then time
    moves to the earliest wake, and the simulator's manual clock with it. Call ``done`` when a thread ends."""

    def __init__(self, sim: Simulator, threads: int) -> None:
        self.now, self._running, self._wakes = 0.0, threads, list[float]()
        self._control = f"{sim.endpoint}/_sim/clock"
        self._turn = threading.Condition()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._turn:
            wake = self.now + seconds
            heapq.heappush(self._wakes, wake)
            self._running -= 1
            self._move()
            while self.now < wake:
                self._turn.wait()

    def done(self) -> None:
        with self._turn:
            self._running -= 1
            self._move()

    def _move(self) -> None:
        """When no thread runs: to the earliest wake; the threads due then run again."""
        if self._running or not self._wakes:
            return
        wake = self._wakes[0]
        httpx.post(self._control, json={"advance": wake - self.now}).raise_for_status()
        self.now = wake
        while self._wakes and self._wakes[0] <= wake:
            heapq.heappop(self._wakes)
            self._running += 1
        self._turn.notify_all()


def watch_together(sim: Simulator, where: str, watchers: int, **settings: Any) -> list[Any]:
    """``watchers`` watches of the ledger at once (threads, each its own ledger object and client, one
    ``LockStep`` clock): their frames."""
    clock, frames, errors = LockStep(sim, watchers), [None] * watchers, []

    def one(number: int) -> None:
        try:
            with connect_to(sim) as client, Ledger(where) as ledger:
                frames[number] = watch(ledger, client=client, clock=clock, sleep=clock.sleep, **settings)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
        finally:
            clock.done()

    threads = [threading.Thread(target=one, args=(n,), name=f"watcher-{n}") for n in range(watchers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return frames


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """``watch``'s polling options, in simulated seconds."""
    return {"interval": args.interval, "max_interval": args.max_interval, "max_rate": args.max_rate,
            "timeout": args.timeout}  # fmt: skip


def run_batch(args: argparse.Namespace, where: str, watchers: int) -> dict[str, Any]:
    """Launch a fresh batch and watch it with ``watchers`` watches at once; the job polls it cost."""
    with Simulator(seed=0, images=args.images, manual_clock=True) as sim:
        job_ids = launch_batch(sim, where, args.jobs)
        before, wall = job_polls(sim), time.perf_counter()
        frames = watch_together(sim, where, watchers, **settings(args))
        wall, polls = time.perf_counter() - wall, job_polls(sim) - before
        planned = {job["job_id"]: job["status"] for job in httpx.get(f"{sim.endpoint}/_sim/state").json()["jobs"]}
    with Ledger(where) as ledger:
        rows = ledger.rows()
        assert not ledger.rows(LIVE), "jobs still live after the watch"
        assert all(row["watcher"] is None for row in rows), "a finished watch kept its jobs"
    for frame in frames:
        assert set(frame["job_id"]) == set(job_ids), "a watch saw other jobs than the batch"
    ended = {row["job_id"]: row["state"] for row in rows}
    wrong = [j for j in job_ids if (ended[j] == "failed") != (planned[j] == "FAIL")]
    assert not wrong, f"{len(wrong)} job(s) ended otherwise than the simulator planned"
    return {"watchers": watchers, "job_polls": polls, "polls_per_job": polls / args.jobs, "wall_s": wall}


def measure(args: argparse.Namespace, ledger_for: Callable[[str], str]) -> dict[str, Any]:
    """The single watch's run and the shared run (ledgers at ``ledger_for("single")`` and ``("shared")``)."""
    single = run_batch(args, ledger_for("single"), 1)
    shared = run_batch(args, ledger_for("shared"), args.watchers)
    ratio = shared["job_polls"] / single["job_polls"]
    return {"benchmark": "watchers", "jobs": args.jobs, "watchers": args.watchers,
            "settings_sim": {"interval_s": args.interval, "max_interval_s": args.max_interval,
                             "max_rate_per_s": args.max_rate},
            "single": single, "shared": shared, "ratio": ratio, "goal_max": GOAL, "met": ratio <= GOAL,
            "mechanism": "polling the ledger"}  # fmt: skip


def emptied(url: str) -> str:
    """A database ledger with no rows nor leases (each run launches the same batch again)."""
    with Ledger(url) as ledger, ledger.transaction() as db:
        db.execute(delete(exports))
        db.execute(delete(leases))
    return url


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-watchers-") as folder:
        where = (lambda run: emptied(args.ledger)) if args.ledger else (lambda run: str(Path(folder) / f"{run}.db"))
        results = measure(args, where)
    return {**results, "ledger": "postgresql" if args.ledger else "sqlite", "machine": harness.machine(("ims-nb",))}


def report(results: dict[str, Any]) -> str:
    single, shared = results["single"], results["shared"]
    return "\n".join([
        f"watchers: {results['jobs']} jobs, {results['ledger']} ledger ({harness.machine_text(results)})",
        *(f"  {run['watchers']} watch(es): {run['job_polls']:>7,} job polls ({run['polls_per_job']:.2f}/job), "
          f"{run['wall_s']:.1f} s" for run in (single, shared)),
        f"  ratio {results['ratio']:.3f} (goal <= {results['goal_max']}: {'met' if results['met'] else 'NOT met'})",
    ])  # fmt: skip


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=500, help="jobs in the batch (default 500)")
    parser.add_argument("--watchers", type=int, default=5, help="watches at once in the shared run (default 5)")
    parser.add_argument("--images", type=int, default=1000, help="images in the simulated world (default 1000)")
    parser.add_argument("--timeout", type=float, default=86400.0, help="simulated s a run may take (default 1 day)")
    parser.add_argument("--ledger", help="a PostgreSQL URL of a database for this benchmark (default SQLite files)")
    harness.polling_options(parser)


def check(args: argparse.Namespace) -> str | None:
    if args.jobs < 1 or args.watchers < 1:
        return "--jobs and --watchers must be positive"
    return None


BENCH = harness.Bench("watchers", __doc__, options, run_benchmark, report, check, lambda r: 0 if r["met"] else 1)


def main(argv: list[str] | None = None) -> int:
    return harness.main(BENCH, argv)


if __name__ == "__main__":
    harness.run_module(BENCH)
