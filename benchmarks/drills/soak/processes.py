"""The soak's processes: ``ims-nb sim`` and the watcher, started, read and stopped."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from benchmarks import harness
from benchmarks.drills.soak.probes import CountingTransport, connect
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.watch import Progress, watch
from ims_nb.vocab import LIVE, STALL_AFTER

STARTUP_TIMEOUT = 120.0  # real s for the simulator to build its world and for the watcher to start


# --- the processes ------------------------------------------------------------------------------------


def read_line(stream: IO[str], timeout: float, what: str) -> str:
    """One line from a child's stdout, or RuntimeError after ``timeout`` real seconds."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        raise RuntimeError(f"{what} did not start within {timeout:g} s")
    return box[0]


@contextlib.contextmanager
def simulator(images: int, scale: float, log: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """``ims-nb sim`` as a child process; its JSON line. Terminated on exit."""
    command = [sys.executable, "-m", "ims_nb", "sim", "--seed", "0", "--images", str(images), "--time-scale",
               f"{scale:g}"]  # fmt: skip
    with log.open("w") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert process.stdout is not None
            yield process, json.loads(read_line(process.stdout, STARTUP_TIMEOUT, "the simulator"))
        finally:
            stop(process)


@contextlib.contextmanager
def watcher(info: dict[str, str], args: argparse.Namespace, folder: Path) -> Iterator[subprocess.Popen[str]]:
    """The watcher process (``... soak watcher``): the simulator's line goes on its stdin (no secrets in argv)."""
    scale = args.time_scale
    command = [sys.executable, "-m", __package__, "watcher", "--ledger", str(folder / "ledger.sqlite"),
               "--stop", str(folder / "stop"), "--report", str(folder / "watcher.json"),
               "--interval", f"{args.interval / scale!r}", "--max-interval", f"{args.max_interval / scale!r}",
               "--max-rate", f"{args.max_rate * scale!r}", "--stall-after", f"{STALL_AFTER / scale!r}"]  # fmt: skip
    with (folder / "watcher.log").open("w") as errors:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   cwd=harness.ROOT)  # fmt: skip
        try:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(json.dumps(info) + "\n")
            process.stdin.close()
            if read_line(process.stdout, STARTUP_TIMEOUT, "the watcher").strip() != "ready":
                raise RuntimeError("the watcher did not say it was ready")
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_watcher(args: argparse.Namespace) -> int:
    """The watcher process: ``watch`` the ledger round after round until the stop file exists and nothing is live."""
    info = json.loads(sys.stdin.readline())
    transport = CountingTransport(httpx.HTTPTransport())
    started, rounds, progress = time.perf_counter(), 0, Counter[str]()

    def on_progress(report: Progress) -> None:  # what a progress bar would draw: the ETA is worked out each time
        progress.update(reports=1, stalled=report.stalled, with_eta=report.eta_seconds is not None)

    with connect(info, transport) as client, Ledger(args.ledger) as ledger:
        print("ready", flush=True)
        while True:
            if any(row["job_id"] for row in ledger.rows(LIVE)):
                watch(ledger, client=client, on_progress=on_progress, stall_after=args.stall_after,
                      interval=args.interval, max_interval=args.max_interval, max_rate=args.max_rate)  # fmt: skip
                rounds += 1
            elif args.stop.exists() and not ledger.rows(LIVE):
                break
            time.sleep(args.max_interval)
    report = {"requests": transport.summary(), "rounds": rounds, "progress": dict(progress),
              "wall_s": time.perf_counter() - started}  # fmt: skip
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def watcher_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="soak watcher", description="the soak's watcher process (internal)")
    parser.add_argument("--ledger", type=Path, required=True)
    parser.add_argument("--stop", type=Path, required=True, help="stop once this file exists and nothing is live")
    parser.add_argument("--report", type=Path, required=True, help="where to write the request counts")
    parser.add_argument("--interval", type=float, required=True, help="real s")
    parser.add_argument("--max-interval", type=float, required=True, help="real s")
    parser.add_argument("--max-rate", type=float, required=True, help="requests per real s")
    parser.add_argument("--stall-after", type=float, required=True, help="real s")
    return parser
