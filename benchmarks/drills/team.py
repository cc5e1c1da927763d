"""The team drill: launcher processes on overlapping plans, one simulator, one PostgreSQL ledger, a kill, a restart.

    python -m benchmarks.drills.team [--launchers 4] [--plan-size 200] [--exportable 400] [--max-rate 20]
                                     [--kill-at 0.3] [--restart-at 0.5] [--down-for 2] [--output PATH]

A throwaway PostgreSQL server (``tests/pg.py``'s ``PgServer``: initdb in a temporary folder, loopback, a free
port) holds the ledger; ``ims-nb sim --manual-clock`` (seed 0) is the cloud. This process plans the first
``--exportable`` exportable images once, then starts ``--launchers`` launcher processes (``... team launcher``,
the simulator's JSON line on their stdin, ``IMS_NB_HOST=host-N`` each, and each an IAM user of its own when
the simulator has ``--team``), each launching a window of
``--plan-size`` of them (``launch``, concurrency 4, ``--max-rate`` exports per s): windows start every
``exportable / launchers`` images and wrap around, so with the defaults each image is in two plans. The first
launcher starts first, the others at its first claim, and it is SIGKILLed ``--kill-at`` of its plan's time
(``plan-size / max-rate``) after that claim; once
the ledger holds ``--restart-at`` of the images, PostgreSQL is stopped for ``--down-for`` s and started again
(same port, same data) while the others launch on. When they have ended and host-1's lease (``--lease-seconds``,
``IMS_NB_LEASE_SECONDS``) has expired, one ``reconcile`` and one ``watch`` take every row to its end.

The judge is the simulator's own record (``GET /_sim/state``): exactly one job per image planned, exactly one
ledger row per export (no duplicate claim), no row left ``submitting``, ``unknown`` or live. The exit status is 1
unless all hold. The results go to ``benchmarks/results/team.json`` (not in git).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from benchmarks import harness
from benchmarks.drills.judging import SimClock
from benchmarks.drills.soak.probes import connect
from benchmarks.drills.soak.processes import STARTUP_TIMEOUT, read_line, stop
from ims_nb.exports.launch import launch, reconcile
from ims_nb.exports.leases import ENV_HOST, ENV_LEASE_SECONDS
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.exports.watch import watch
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim.backend import SimBackend
from ims_nb.vocab import LIVE, State
from tests.pg import MISSING, PgServer, find_bindir

BUCKET, KEY_TEMPLATE = "ims-exports-cn-north-4", "team/{name}-{id}.{ext}"
#: Whether ``ims-nb sim --team N`` (an IAM user per operator) exists in this tree.
TEAM_SIMULATOR = "team" in inspect.signature(SimBackend.__init__).parameters
CONCURRENCY, DOUBTFUL = 4, (State.SUBMITTING.value, State.UNKNOWN.value)
#: Real s to wait for a launcher to reach its kill point, and for the launchers to end.
PATIENCE = 300.0


@contextlib.contextmanager
def database() -> Iterator[tuple[PgServer, str]]:
    """A throwaway PostgreSQL server and the URL of its new, empty ledger database; removed on exit."""
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError(MISSING)
    server = PgServer(bindir)
    try:
        server.launch()
        yield server, server.create_database("ims_nb_team")
    finally:
        server.close()


@contextlib.contextmanager
def simulator(images: int, team: int, log: Path) -> Iterator[dict[str, str]]:
    """``ims-nb sim --manual-clock`` (with ``--team``, when it exists) as a child process; its JSON line."""
    command = [sys.executable, "-m", "ims_nb", "sim", "--seed", "0", "--images", str(images), "--manual-clock"]
    command += ["--team", str(team)] if TEAM_SIMULATOR else []
    with log.open("w") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert process.stdout is not None
            yield json.loads(read_line(process.stdout, STARTUP_TIMEOUT, "the simulator"))
        finally:
            stop(process)


def identities(info: dict[str, str], launchers: int) -> list[dict[str, str]]:
    """The simulator's line for each launcher: an IAM user of its own (``--team``) when there are enough users
    allowed to export, else the line's own user for all."""
    found = httpx.get(f"{info['endpoint']}/_sim/credentials", timeout=60).raise_for_status().json()["users"]
    users = [user for user in found if user["obs_write"] and user["ak"]]
    if len(users) < launchers:
        return [info] * launchers
    return [{**info, "ak": user["ak"], "sk": user["sk"]} for user in users[-launchers:]]


def windows(info: dict[str, str], args: argparse.Namespace) -> list[pd.DataFrame]:
    """The first ``exportable`` exportable images planned once, cut into one overlapping window per launcher."""
    with connect(info, httpx.HTTPTransport()) as client:
        plan = plan_exports(client.images(), bucket=BUCKET, key_template=KEY_TEMPLATE, client=client,
                            profile=SIMULATOR_PROFILE)  # fmt: skip
    plan = plan[plan["exportable"].fillna(False).astype(bool)].head(args.exportable)
    if len(plan) < args.exportable:
        raise RuntimeError(f"the simulator has {len(plan)} exportable images, not {args.exportable}")
    return cut(plan, args.launchers, args.plan_size)


def cut(plan: pd.DataFrame, launchers: int, size: int) -> list[pd.DataFrame]:
    """``launchers`` windows of ``size`` rows, starting every ``len(plan) / launchers`` rows, wrapping around."""
    n = len(plan)
    starts = [number * n // launchers for number in range(launchers)]
    return [plan.iloc[[(start + k) % n for k in range(size)]] for start in starts]


def start_launcher(number: int, info: dict[str, str], url: str, plan: Path, args: argparse.Namespace,
                   folder: Path) -> subprocess.Popen[str]:  # fmt: skip
    """Launcher ``number`` (``... team launcher``) as ``host-N``: the simulator's line on its stdin, not in argv."""
    command = [sys.executable, "-m", "benchmarks.drills.team", "launcher", "--ledger", url, "--plan", str(plan),
               "--max-rate", f"{args.max_rate!r}"]  # fmt: skip
    env = {**os.environ, ENV_HOST: f"host-{number}", ENV_LEASE_SECONDS: f"{args.lease_seconds!r}"}
    with (folder / f"launcher-{number}.log").open("w") as errors:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   cwd=harness.ROOT, env=env)  # fmt: skip
    assert process.stdin is not None
    process.stdin.write(json.dumps(info) + "\n")
    process.stdin.close()
    return process


def run_launcher(args: argparse.Namespace) -> int:
    """A launcher process: launch its window of the plan into the shared ledger; say how many rows it launched."""
    info = json.loads(sys.stdin.readline())
    plan = pd.read_pickle(args.plan)
    with connect(info, httpx.HTTPTransport()) as client, Ledger(args.ledger) as ledger:
        out = launch(plan, client=client, ledger=ledger, concurrency=CONCURRENCY, max_rate=args.max_rate)
    print(json.dumps({"launched": len(out)}), flush=True)
    return 0


def wait_for(condition: Callable[[], bool], what: str, victim: subprocess.Popen[str] | None = None) -> None:
    """Poll until ``condition()``; RuntimeError after ``PATIENCE`` s, or when ``victim`` ended before it."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if victim is not None and victim.poll() is not None:
            raise RuntimeError(f"the launcher ended before {what}: lower --max-rate or raise --plan-size")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {PATIENCE:g} s")
        time.sleep(0.02)


def claimed_by(ledger: Ledger, pid: int) -> int:
    return sum(1 for row in ledger.rows() if str(pid) in (row["owner"] or "").split(":")[1:])  # host:pid[:lease]


def run_drill(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ims-nb-team-") as name, database() as (server, url):
        folder = Path(name)
        with simulator(max(200, args.exportable * 2), args.launchers, folder / "sim.log") as info:
            plans, who = windows(info, args), identities(info, args.launchers)
            for number, plan in enumerate(plans, start=1):
                plan.to_pickle(folder / f"plan-{number}.pickle")
            wanted = sorted({image for plan in plans for image in plan["image_id"]})
            victim = start_launcher(1, who[0], url, folder / "plan-1.pickle", args, folder)
            with Ledger(url) as ledger:
                # host-1 first, the others once it claims: had they started together, a late host-1 could find its
                # window claimed by the others and end before its kill point.
                wait_for(lambda: claimed_by(ledger, victim.pid) > 0, "its first claim", victim)
                launchers = [victim, *(start_launcher(n, who[n - 1], url, folder / f"plan-{n}.pickle", args, folder)
                                       for n in range(2, args.launchers + 1))]  # fmt: skip
                time.sleep(args.kill_at * args.plan_size / args.max_rate)  # the share of its plan's time
                if victim.poll() is not None:
                    raise RuntimeError("host-1 ended before its kill point: lower --max-rate or --kill-at")
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                expired = time.monotonic() + args.lease_seconds  # from another host, host-1's rows wait for this
                killed_after = claimed_by(ledger, victim.pid)
                for other in launchers[1:]:  # every one has its ledger open before the server goes down
                    wait_for(lambda other=other: claimed_by(ledger, other.pid) > 0, "its first claim", other)
                wait_for(lambda: len(ledger.rows()) >= args.restart_at * len(wanted), "restart point")
                restarted_at = len(ledger.rows())
                server.restart(down_for=args.down_for)
                codes = [process.wait(PATIENCE) for process in launchers[1:]]
                failures = {f"host-{n}": (folder / f"launcher-{n}.log").read_text()[-3000:]
                            for n, code in enumerate(codes, start=2) if code}  # fmt: skip
                time.sleep(max(0.0, expired - time.monotonic()))
                reconciled, rows = settle(info, ledger)
            jobs = httpx.get(f"{info['endpoint']}/_sim/state", timeout=60).raise_for_status().json()["jobs"]
    seconds = time.perf_counter() - started
    return {"benchmark": "team", "launchers": args.launchers, "plan_size": args.plan_size,
            "images_planned": len(wanted), "max_rate": args.max_rate, "launcher_exit_codes": codes,
            "launcher_failures": failures, "killed": {"host": "host-1", "claimed_rows": killed_after},
            "restart": {"down_for_s": args.down_for, "ledger_rows_then": restarted_at},
            "reconciled": reconciled, **judge(wanted, jobs, rows), "seconds": seconds,
            "machine": harness.machine(["sqlalchemy", "psycopg"])}  # fmt: skip


def settle(info: dict[str, str], ledger: Ledger) -> tuple[int, list[dict[str, Any]]]:
    """One reconcile and one watch to the end (the clock moved by the watch's sleeps): rows reconciled, all rows."""
    with connect(info, httpx.HTTPTransport()) as client, httpx.Client(base_url=f"{info['endpoint']}/_sim") as control:
        reconciled = reconcile(ledger, client)
        clock = SimClock(control)
        watch(ledger, client=client, clock=clock, sleep=clock.sleep, interval=300.0, max_interval=1800.0,
              max_rate=1000.0, timeout=7 * 24 * 3600.0)  # fmt: skip
    return len(reconciled), ledger.rows(every_account=True)


def judge(wanted: Sequence[str], jobs: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures: jobs and rows per image, duplicates, images never exported, rows doubtful or live."""
    per_image = Counter(job["entities"]["image_id"] for job in jobs)
    rows_per_image = Counter(row["image_id"] for row in rows)
    again = resent(jobs)
    return {
        "jobs": len(jobs), "ledger_rows": len(rows), "resent_after_failure": again,
        "duplicate_jobs": sum(n - 1 for n in per_image.values() if n > 1) - again,
        "duplicate_rows": sum(n - 1 for n in rows_per_image.values() if n > 1),
        "never_exported": sum(1 for image in wanted if not per_image[image]),
        "unplanned_jobs": len(set(per_image) - set(wanted)),
        "doubtful": sum(1 for row in rows if row["state"] in DOUBTFUL),
        "live": sum(1 for row in rows if row["state"] in LIVE),
        "states": dict(Counter(row["state"] for row in rows)),
        "hosts": dict(Counter(str(row.get("launched_host")) for row in rows)),
        "users": dict(Counter(str(row.get("launched_user")) for row in rows)),
    }  # fmt: skip


def resent(jobs: Sequence[dict[str, Any]]) -> int:
    """Jobs of an image started after all its earlier jobs had failed: a lost job sent again once the service
    said it failed (``send_again``), the one second job allowed (the service, not a launcher, ended the first)."""
    by_image: dict[str, list[dict[str, Any]]] = {}
    for job in sorted(jobs, key=lambda job: job["begin_time"]):
        by_image.setdefault(job["entities"]["image_id"], []).append(job)
    return sum(1 for found in by_image.values() for n, job in enumerate(found) if n and all(
        earlier["status"] == "FAIL" and earlier["end_time"] <= job["begin_time"] for earlier in found[:n]))  # fmt: skip


def passed(results: dict[str, Any]) -> bool:
    """Exactly one job and one row per image planned, nothing doubtful or live, every other launcher done."""
    wanted = results["images_planned"]
    clean = not any(results[k] for k in ("duplicate_jobs", "duplicate_rows", "never_exported", "unplanned_jobs",
                                         "doubtful", "live"))  # fmt: skip
    jobs = results["jobs"] - results["resent_after_failure"]
    return clean and jobs == results["ledger_rows"] == wanted and not any(results["launcher_exit_codes"])


def report(results: dict[str, Any]) -> str:
    duplicates = results["duplicate_jobs"] + results["duplicate_rows"]
    return (f"team drill: {results['launchers']} launchers x {results['plan_size']} images over "
            f"{results['images_planned']}: {results['jobs']} jobs ({results['resent_after_failure']} sent again "
            f"after a lost job failed), {results['ledger_rows']} rows, {duplicates} duplicates, "
            f"{results['doubtful']} doubtful, {results['never_exported']} never exported; host-1 "
            f"SIGKILLed after {results['killed']['claimed_rows']} claims, PostgreSQL down "
            f"{results['restart']['down_for_s']:g} s at {results['restart']['ledger_rows_then']} rows, "
            f"{results['reconciled']} rows reconciled; {results['seconds']:.1f} s "
            f"({'passed' if passed(results) else 'FAILED'}; {harness.machine_text(results)})")  # fmt: skip


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--launchers", type=int, default=4, help="launcher processes (default 4)")
    parser.add_argument("--plan-size", type=int, default=200, help="images in each launcher's plan (default 200)")
    parser.add_argument("--exportable", type=int, default=400, help="exportable images planned (default 400)")
    parser.add_argument("--max-rate", type=float, default=20.0, help="exports per s per launcher (default 20)")
    parser.add_argument("--kill-at", type=float, default=0.3, help="share of its plan's time host-1 runs, killed")
    parser.add_argument("--restart-at", type=float, default=0.5, help="share of the images in the ledger then")
    parser.add_argument("--down-for", type=float, default=2.0, help="s PostgreSQL stays down (default 2)")
    parser.add_argument("--lease-seconds", type=float, default=10.0, help="the launchers' lease (default 10 s)")


def check(args: argparse.Namespace) -> str | None:
    sizes = 2 <= args.launchers <= args.exportable and 1 <= args.plan_size <= args.exportable
    if not (sizes and 0 < args.kill_at < 1 and 0 < args.restart_at < 1 and args.max_rate > 0 and args.down_for >= 0):
        return "need 2 <= --launchers <= --exportable, 1 <= --plan-size <= --exportable, 0 < --kill-at < 1, ..."
    return None


BENCH = harness.Bench("team", __doc__, options, run_drill, report, check, lambda results: 0 if passed(results) else 1)


def launcher_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="team launcher", description="the team drill's launcher process")
    parser.add_argument("--ledger", required=True, help="the ledger's URL")
    parser.add_argument("--plan", type=Path, required=True, help="the launcher's window of the plan (a pickle)")
    parser.add_argument("--max-rate", type=float, required=True, help="exports per s")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The drill, or with ``launcher`` first, one of the launcher processes it starts."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["launcher"]:
        return run_launcher(launcher_parser().parse_args(argv[1:]))
    return harness.main(BENCH, argv)


if __name__ == "__main__":
    sys.exit(main())
