"""One watcher per job, on SQLite and PostgreSQL: take and release, five watches costing one's job polls, and a
watcher killed mid-batch whose jobs another on its host takes at its next look."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from benchmarks import bench_watchers
from ims_nb.exports.identity import Identity
from ims_nb.exports.leases import Kind, Lease, this_host
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.tables import leases
from ims_nb.exports.watch import watch
from ims_nb.exports.watchers import MIN_LEASE_SECONDS, Share, lease_ttl, release, take
from ims_nb.sim import Simulator
from ims_nb.vocab import LIVE, State
from tests.exports import test_ledger

#: Each test runs on both engines (``where``, the exports conftest's, and the ledger tests' ``ledger`` on it).
ledger = test_ledger.ledger
ROOT = Path(__file__).resolve().parents[2]


def running_rows(ledger: Ledger, count: int) -> list[int]:
    """``count`` rows whose jobs run (a job id each)."""
    ids = []
    for number in range(count):
        row_id = ledger.claim(**{**test_ledger.TARGET, "image_id": f"image-{number}"})
        assert row_id is not None
        ledger.update(row_id, state=State.RUNNING, job_id=f"job-{number}")
        ids.append(row_id)
    return ids


def watchers_of(ledger: Ledger) -> dict[int, str | None]:
    return {row["row_id"]: row["watcher"] for row in ledger.rows()}


# --- take and release -----------------------------------------------------------------------------


def test_the_first_watcher_takes_the_free_jobs_and_the_next_one_none(ledger: Ledger) -> None:
    ids = running_rows(ledger, 4)
    with Lease(ledger, Kind.WATCHER, ttl=60) as first, Lease(ledger, Kind.WATCHER, ttl=60) as second:
        assert take(ledger, first.holder, ids) == set(ids)
        assert take(ledger, second.holder, ids) == set()
        assert take(ledger, first.holder, ids[:2]) == set(ids[:2])  # a holder keeps its rows, asked again
        assert release(ledger, first.holder, ids[:1]) == 1
        assert take(ledger, second.holder, ids) == {ids[0]}
        assert release(ledger, first.holder) == 3
    assert take(ledger, "nobody:1:00000000", []) == set()


def test_a_watcher_whose_lease_expired_loses_its_jobs_to_the_next_take(ledger: Ledger) -> None:
    ids = running_rows(ledger, 3)
    dead = Lease(ledger, Kind.WATCHER, ttl=0.3)
    with ledger.transaction() as db:
        dead._insert(db, time.time())  # written, never renewed: its process died
    assert take(ledger, dead.holder, ids) == set(ids)
    with Lease(ledger, Kind.WATCHER, ttl=60) as alive:
        assert take(ledger, alive.holder, ids) == set()
        time.sleep(0.4)
        assert take(ledger, alive.holder, ids) == set(ids)
    assert take(ledger, "nobody:1:00000000", ids) == set(ids)  # a holder whose lease is gone holds nothing


def held_by(ledger: Ledger, host: str, pid: int) -> str:
    """A watcher's holder on ``host`` with process ``pid``, its lease written for a minute (never renewed)."""
    lease = Lease(ledger, Kind.WATCHER, ttl=60)
    lease.holder = f"{host}:{pid}:{secrets.token_hex(4)}"
    with ledger.transaction() as db:
        lease._insert(db, time.time())
    return lease.holder


def test_a_watcher_of_this_host_whose_process_is_gone_loses_its_jobs_before_its_lease_expires(ledger: Ledger) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is no more (reaped)
    dead, remote, alive = running_rows(ledger, 3)
    holders = {dead: held_by(ledger, this_host(), gone.pid), remote: held_by(ledger, "another-host", gone.pid),
               alive: held_by(ledger, this_host(), os.getpid())}  # fmt: skip
    for row_id, holder in holders.items():
        assert take(ledger, holder, [row_id]) == {row_id}
    with Lease(ledger, Kind.WATCHER, ttl=60) as next_one:
        assert take(ledger, next_one.holder, holders) == {dead}  # another host's: only its lease can tell
    assert watchers_of(ledger) == {**holders, dead: next_one.holder}


def test_only_live_jobs_are_taken(ledger: Ledger) -> None:
    running, verified, unjudged = running_rows(ledger, 3)
    ledger.update(verified, state=State.VERIFIED, status="SUCCESS")
    ledger.update(unjudged, state=State.SUCCEEDED, status="SUCCESS")  # its watcher let go before the HEAD: done
    with Lease(ledger, Kind.WATCHER, ttl=60) as lease:
        assert take(ledger, lease.holder, [running, verified, unjudged]) == {running}


def test_the_lease_is_half_the_poll_interval_so_a_dead_watchers_jobs_are_taken_within_one() -> None:
    assert lease_ttl(5.0) == 2.5
    assert lease_ttl(300.0) == 150.0
    assert lease_ttl(0.01) == MIN_LEASE_SECONDS


# --- five watches, one watch's job polls --------------------------------------------------------------


def measurement_args(jobs: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_watchers.options(parser)
    return parser.parse_args(["--jobs", str(jobs), "--images", "200", "--interval", "300", "--max-interval", "1800",
                              "--max-rate", "1000"])  # fmt: skip


def test_five_watchers_of_one_batch_send_the_job_polls_of_one(where: str, tmp_path: Path) -> None:
    args = measurement_args(40)
    if "://" in where:  # one database: each run empties it
        found = bench_watchers.measure(args, lambda run: bench_watchers.emptied(where))
    else:
        found = bench_watchers.measure(args, lambda run: str(tmp_path / f"{run}.sqlite"))
    single, shared = found["single"], found["shared"]
    assert (single["watchers"], shared["watchers"]) == (1, 5)
    assert single["job_polls"] >= args.jobs  # every job polled at least once
    assert shared["job_polls"] <= 1.1 * single["job_polls"], found
    assert found["met"]


# --- a watcher dies: another on its host takes its jobs at its next look ------------------------------

INTERVAL = 2.0  # seconds, real time: the lease is 1 s, the followers look every 1 s
#: What the test adds to the bound for its own observation (it looks every 50 ms) and a loaded machine.
SLACK = 0.5

WATCHER_PROCESS = textwrap.dedent("""
    import sys
    import ims_nb
    from ims_nb.exports.ledger import Ledger
    from ims_nb.exports.watch import watch

    where, region, endpoint, interval = sys.argv[1:]
    with ims_nb.connect(region, endpoint=endpoint) as client, Ledger(where) as ledger:
        watch(ledger, client=client, interval=float(interval), max_interval=float(interval))
""")


def start_watcher_process(sim: Simulator, where: str) -> subprocess.Popen[bytes]:
    """A watch of the ledger in a process of its own (credentials from the official SDK's variables)."""
    info = sim.info
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HUAWEICLOUD_SDK_AK": info.ak, "HUAWEICLOUD_SDK_SK": info.sk,
           "HUAWEICLOUD_SDK_PROJECT_ID": info.project_id}  # fmt: skip
    command = [sys.executable, "-c", WATCHER_PROCESS, where, info.region, info.endpoint, str(INTERVAL)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def until(condition: Any, timeout: float, what: str) -> float:
    """Wait (50 ms steps) until ``condition()`` holds; when it did."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)
    return time.monotonic()


def test_a_killed_watchers_jobs_are_taken_at_the_next_look_and_the_batch_finishes(
    where: str, fresh_sim: Simulator, control: httpx.Client
) -> None:
    job_ids = bench_watchers.launch_batch(fresh_sim, where, 6)  # the simulator's clock stands: the jobs run on
    process = start_watcher_process(fresh_sim, where)
    try:
        with Ledger(where) as ledger:
            until(lambda: len(set(watchers_of(ledger).values()) - {None}) == 1, 60, "the first watcher took the jobs")
            (first,) = set(watchers_of(ledger).values())
            until(lambda: bench_watchers.job_polls(fresh_sim) >= len(job_ids), 30, "the first watcher polled")
            frames: list[Any] = []
            second = threading.Thread(target=lambda: frames.append(watch_on(fresh_sim, where)))
            second.start()  # it follows the first one's jobs in the ledger, sending no poll
            time.sleep(INTERVAL)
            process.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            process.wait()
            taken = until(lambda: set(watchers_of(ledger).values()) - {first, None}, 10, "the jobs were taken")
            assert taken - killed <= lease_ttl(INTERVAL) + SLACK  # not its lease: its pid, gone, tells at once
            assert len(set(watchers_of(ledger).values())) == 1  # all of them, by one watcher
            control.post("/clock", json={"advance": 86400}).raise_for_status()
            second.join(timeout=60)
            assert not second.is_alive()
            assert not ledger.rows(LIVE)
            assert set(watchers_of(ledger).values()) == {None}
            assert set(frames[0]["job_id"]) == set(job_ids)
    finally:
        process.kill()
        process.wait()


def watch_on(sim: Simulator, where: str) -> Any:
    with bench_watchers.connect_to(sim) as client, Ledger(where) as ledger:
        return watch(ledger, client=client, interval=INTERVAL, max_interval=INTERVAL, timeout=120)


def test_a_watchers_lease_says_who_watches(ledger: Ledger) -> None:
    alice = Identity("http://127.0.0.1:1", project_id="p1", principal="AK AKALICE", user="alice", host="host-a")
    signer = Identity("http://127.0.0.1:1", project_id="p1", principal="AK AKBOB")
    for bound, expected in ((ledger.bound_to(alice), "alice"), (ledger.bound_to(signer), "AK AKBOB")):
        with Share(bound, 60.0, 600.0) as share, bound.transaction() as db:
            found = db.execute(select(leases.c.user).where(leases.c.holder == share.holder)).scalar_one()
        assert found == expected  # the IAM user when known, else who signs
