"""One run of the fault matrix: a listing or an export batch under one fault, and its verdict."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

import ims_nb
from benchmarks.drills.fault_matrix.recording import ObsThroughKeys, Recorder, Trigger, tally
from benchmarks.drills.fault_matrix.scenarios import (
    BUCKET,
    KEY_TEMPLATE,
    LAUNCH_CONCURRENCY,
    LISTING_EVERY,
    RETRY,
    WATCH_OPTIONS,
    Scenario,
)
from benchmarks.drills.fault_matrix.worlds import World
from benchmarks.drills.judging import SimClock, judge_batch
from ims_nb.exports.launch import JOB_ID_UNKNOWN, launch
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import watch
from ims_nb.rules import SIMULATOR_PROFILE


def triggers(scenario: Scenario, world: World, phases: Sequence[str], batch: int, pages: int) -> list[Trigger]:
    """Where the events fall: half-way through the listing and the launch; in the watch after ``batch`` polls
    (the first round), and for tokens again after three rounds."""
    if scenario.event is None:
        return []
    action = world.restart if scenario.event == "restart" else lambda: _expire(world)
    points = [("listing", "list", pages // 2 + 1), ("launch", "export", batch // 2 + 1), ("watch", "poll", batch)]
    if scenario.event == "expire":
        points.append(("watch", "poll", 3 * batch))
    return [Trigger(phase, kind, nth, action) for phase, kind, nth in points if phase in phases]


def _expire(world: World) -> None:
    world.control.post("/tokens/expire").raise_for_status()


@contextlib.contextmanager
def connected(world: World, scenario: Scenario, recorder: Recorder) -> Iterator[Any]:
    """The client of a run: AK/SK, or for the token scenario a password login (OBS through the same user's keys)."""
    info = world.info
    options: dict[str, Any] = {"endpoint": info["endpoint"], "transport": recorder, "retry": RETRY}
    if scenario.timeout is not None:
        options["timeout"] = scenario.timeout
    with ims_nb.connect(ak=info["ak"], sk=info["sk"], project_id=info["project_id"], **options) as keys:
        if scenario.event != "expire":
            yield keys
            return
        users = world.control.get("/credentials").json()
        operator = next(u for u in users["users"] if u["ak"] == info["ak"])
        with ims_nb.connect(username=operator["name"], password=operator["password"], domain=users["domain_name"],
                            **options) as login:  # fmt: skip
            yield ObsThroughKeys(login, keys)


@contextlib.contextmanager
def faults_on(world: World, rules: Sequence[dict[str, Any]]) -> Iterator[dict[str, int]]:
    """Install fault rules for the block; ``injected`` holds how many requests they hit."""
    found = {"injected": 0}
    for rule in rules:
        world.control.post("/faults", json=rule).raise_for_status()
    try:
        yield found
    finally:
        found["injected"] = sum(f["hits"] for f in world.control.get("/faults").json()["faults"])
        world.control.delete("/faults").raise_for_status()


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def run_listing(world: World, scenario: Scenario, expected: Sequence[str], pages: int) -> dict[str, Any]:
    """List every image under the fault; judged against ``expected`` (a clean listing's ids)."""
    world.prepare()
    recorder = Recorder()
    recorder.triggers = triggers(scenario, world, ["listing"], 0, pages)
    events_before = getattr(world, "restarts", 0)
    ids: list[str] = []
    error = None
    started = time.perf_counter()
    rules = [rule | {"every": min(rule["every"], LISTING_EVERY)} for rule in scenario.rules]
    with connected(world, scenario, recorder) as client, faults_on(world, rules) as hits:
        recorder.phase = "listing"
        try:
            ids = client.images()["id"].tolist()
        except Exception as exc:  # noqa: BLE001 - every failure is a finding, reported
            error = _error(exc)
    seconds = time.perf_counter() - started
    problems = judge_listing(ids, expected) if error is None else [f"listing raised {error}"]
    injected = _injected(scenario, hits, recorder, world, events_before)
    return {"listed": len(ids), "unique": len(set(ids)), "expected": len(expected), "problems": problems,
            "injected": injected, "wall_s": seconds, **tally(recorder.entries)}  # fmt: skip


def _injected(scenario: Scenario, hits: dict[str, int], recorder: Recorder, world: World, before: int) -> int:
    """The requests the rules hit, or for an event scenario the events (a restart forgets the rules' hits)."""
    if scenario.event == "restart":
        return int(getattr(world, "restarts", 0)) - before
    if scenario.event is not None:
        return sum(t.fired for t in recorder.triggers)
    return hits["injected"]


def judge_listing(ids: Sequence[str], expected: Sequence[str]) -> list[str]:
    problems = []
    twice = [i for i, n in Counter(ids).items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} image(s) listed twice")
    missing = set(expected) - set(ids)
    if missing:
        problems.append(f"{len(missing)} image(s) missing")
    extra = set(ids) - set(expected)
    if extra:
        problems.append(f"{len(extra)} unknown image(s)")
    return problems


def run_batch(
    world: World, scenario: Scenario, images: pd.DataFrame, folder: Path, *, ledger: str | Path | None = None
) -> dict[str, Any]:
    """Plan, launch and watch ``images`` (each exportable) under the fault; judged by the simulator's jobs.

    The ledger is ``ledger`` (a new one's path or URL), else a new file in ``folder``."""
    world.prepare()
    recorder = Recorder()
    recorder.triggers = triggers(scenario, world, ["launch", "watch"], len(images), 0)
    events_before = getattr(world, "restarts", 0)
    error, planned, frame = None, [], None
    where = ledger if ledger is not None else folder / f"ledger-{time.monotonic_ns()}.sqlite"
    started = time.perf_counter()
    with (
        connected(world, scenario, recorder) as client,
        Ledger(where) as opened,
        faults_on(world, scenario.rules) as hits,
    ):
        try:
            recorder.phase = "plan"
            plan = plan_exports(images, bucket=BUCKET, key_template=KEY_TEMPLATE, client=client,
                                profile=SIMULATOR_PROFILE)  # fmt: skip
            planned = plan.loc[plan["exportable"].fillna(False).astype(bool), "image_id"].tolist()
            recorder.phase = "launch"
            launch(plan, client=client, ledger=opened, concurrency=LAUNCH_CONCURRENCY, max_rate=1000.0)
            recorder.phase = "watch"
            clock = SimClock(world.control)
            frame = watch(opened, client=client, clock=clock, sleep=clock.sleep, **WATCH_OPTIONS)
        except Exception as exc:  # noqa: BLE001 - every failure is a finding, reported
            error = _error(exc)
        rows = opened.rows()
    seconds = time.perf_counter() - started
    jobs = world.control.get("/state").json()["jobs"]
    problems = judge_batch(images["id"].tolist(), planned, jobs, rows)
    if error is not None:
        problems.insert(0, f"{recorder.phase} raised {error}")
    lost = sum(not r["job_id"] and JOB_ID_UNKNOWN in (r["note"] or "") for r in rows)
    return {"batch": len(images), "planned": len(planned), "jobs": len(jobs), "rows": len(rows), "job_id_unknown": lost,
            "states": dict(Counter(r["state"] for r in rows)), "problems": problems, "wall_s": seconds,
            "injected": _injected(scenario, hits, recorder, world, events_before),
            "watched": None if frame is None else len(frame), **tally(recorder.entries)}  # fmt: skip
