"""The soak's driver: the inventory listed once, then batches planned and launched over the simulated day."""

from __future__ import annotations

import argparse
import math
import subprocess
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pandas as pd

from benchmarks.drills.soak.probes import CountingTransport, SimClock, connect
from ims_nb.exports.launch import launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.vocab import LIVE, State

BUCKET = "ims-exports-cn-north-4"
KEY_TEMPLATE = "soak/{name}-{id}.{ext}"
LAUNCH_CONCURRENCY = 8
EXPORTABLE_GUESS = 0.5  # share of listed images plan_exports finds exportable (seed 0: 0.57)
#: Ledger states of a launch that started no job (or may not have).
NOT_STARTED = (State.SUBMITTING.value, State.UNKNOWN.value, State.REFUSED.value)


def batch_sizes(jobs: int, batches: int) -> list[int]:
    """``jobs`` split into ``batches`` near-equal batches (the first ones one larger)."""
    base, extra = divmod(jobs, batches)
    return [base + (n < extra) for n in range(batches) if base + (n < extra)]


class Planner:
    """Plans the next images of the inventory, a slice at a time, and hands out exportable rows in order."""

    def __init__(self, images: pd.DataFrame, client: Any) -> None:
        self.images, self.client, self.cursor = images, client, 0
        self.ready: list[pd.DataFrame] = []
        self.planned = 0

    def take(self, count: int) -> pd.DataFrame:
        have = sum(len(f) for f in self.ready)
        while have < count:
            if self.cursor >= len(self.images):
                raise RuntimeError(f"the inventory ran out of exportable images; raise --images (need {count})")
            size = max(20, math.ceil((count - have) / EXPORTABLE_GUESS))
            chunk = self.images.iloc[self.cursor : self.cursor + size]
            self.cursor += len(chunk)
            plan = plan_exports(chunk, bucket=BUCKET, key_template=KEY_TEMPLATE, client=self.client,
                                profile=SIMULATOR_PROFILE)  # fmt: skip
            self.planned += len(plan)
            rows = plan[plan["exportable"].fillna(False).astype(bool)]
            self.ready.append(rows)
            have += len(rows)
        pool = pd.concat(self.ready)
        self.ready = [pool.iloc[count:]]
        return pool.iloc[:count]


def wait_until(clock: SimClock, when: float, scale: float, process: Sequence[subprocess.Popen[str]]) -> None:
    """Sleep (real time) until the simulator's clock reads ``when``; fail if a child process died."""
    while (left := when - clock()) > 0:
        alive(process)
        time.sleep(min(left / scale, 1.0))


def alive(processes: Sequence[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[2:4]} exited with {process.returncode}")


def drive(args: argparse.Namespace, info: dict[str, str], clock: SimClock, ledger: Ledger,
          children: Sequence[subprocess.Popen[str]]) -> dict[str, Any]:  # fmt: skip
    """List once, then launch the batches on their simulated schedule; what it sent and how late it ran."""
    scale = args.time_scale
    transport = CountingTransport(httpx.HTTPTransport())
    with connect(info, transport) as client:
        started = time.perf_counter()
        images = client.images()
        listing_s = time.perf_counter() - started
        planner, sizes = Planner(images, client), batch_sizes(args.jobs, args.batches)
        every = args.launch_for / max(1, len(sizes) - 1)
        first, lateness, launch_s = clock(), [], 0.0
        for number, size in enumerate(sizes):
            due = first + number * every
            wait_until(clock, due, scale, children)
            lateness.append(clock() - due)
            rows = planner.take(size)
            began = time.perf_counter()
            out = launch(rows, client=client, ledger=ledger, concurrency=LAUNCH_CONCURRENCY,
                         max_rate=args.max_rate * scale)  # fmt: skip
            launch_s += time.perf_counter() - began
            started_jobs = out["job_id"].notna() & ~out["state"].isin(NOT_STARTED)  # the watcher may be at them
            if len(out) != size or not started_jobs.all():
                raise RuntimeError(f"batch {number} was not all started: {out['state'].value_counts().to_dict()}")
    return {"listing_s": listing_s, "listed": len(images), "planned": planner.planned, "batches": len(sizes),
            "batch_every_sim_s": every, "launch_wall_s": launch_s, "first_launch_sim": first,
            "lateness_sim_s": {"max": max(lateness), "mean": sum(lateness) / len(lateness)},
            "requests": transport.summary()}  # fmt: skip


def settle(args: argparse.Namespace, clock: SimClock, ledger: Ledger, end: float,
           children: Sequence[subprocess.Popen[str]]) -> None:  # fmt: skip
    """Run on until the simulated day is over and the watcher has seen every job to its end."""
    wait_until(clock, end, args.time_scale, children)
    deadline = time.monotonic() + args.timeout
    while ledger.rows(LIVE):
        alive(children)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(ledger.rows(LIVE))} job(s) still live {args.timeout:g} s after the day ended")
        time.sleep(0.5)
