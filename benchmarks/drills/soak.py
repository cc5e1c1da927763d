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
``bench_watch.py``; the achieved request rate is reported. The exit status is 1 unless memory stayed flat, no
request failed and the ledger matched.

The results go to ``benchmarks/results/soak.json`` (not in git). Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pandas as pd

import ims_nb
from benchmarks import harness
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import launch, plan_exports
from ims_nb.exports.watch import Progress, watch
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.vocab import LIVE, State

BUCKET = "ims-exports-cn-north-4"
KEY_TEMPLATE = "soak/{name}-{id}.{ext}"
LAUNCH_CONCURRENCY = 8
STARTUP_TIMEOUT = 120.0  # real s for the simulator to build its world and for the watcher to start
EXPORTABLE_GUESS = 0.5  # share of listed images plan_exports finds exportable (seed 0: 0.57)
FINAL_STATUSES = ("SUCCESS", "FAIL")
#: How each final status of the simulator must end in the ledger.
LEDGER_STATE_FOR = {"SUCCESS": State.VERIFIED.value, "FAIL": State.FAILED.value}
#: Ledger states of a launch that started no job (or may not have).
NOT_STARTED = (State.SUBMITTING.value, State.UNKNOWN.value, State.REFUSED.value)
POLL_PREFIX = "/v1/cloudimages/job/"
MiB = 1024**2
STALL_AFTER = 1800.0  # simulated s: watch's default


# --- counting requests (counters only: the soak measures memory) -------------------------------------


class CountingTransport(httpx.BaseTransport):
    """Passes every request on to ``inner`` and counts it by kind and answer; keeps a few failures as examples."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.kinds: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()  # "GET 200", "HEAD 404", "POST ConnectError", ...
        self.failed = 0
        self.examples: list[str] = []
        self._lock = threading.Lock()

    @staticmethod
    def classify(request: httpx.Request) -> str:
        """``poll`` (a job's status), ``verify`` or ``lookup`` (HEAD of an object or bucket), ``export``, ``other``."""
        path, method = request.url.path, request.method
        parts = path.strip("/").split("/")
        if method == "GET" and (path.startswith(POLL_PREFIX) or len(parts) == 4 and parts[2] == "jobs"):
            return "poll"
        if method == "POST" and path.endswith("/file"):
            return "export"
        if method == "HEAD":
            return "head"
        return "other"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        kind = self.classify(request)
        try:
            response = self.inner.handle_request(request)
        except Exception as exc:
            self._count(request, kind, type(exc).__name__, failed=True)
            raise
        status = response.status_code
        failed = status >= 400 and not (request.method == "HEAD" and status == 404)
        self._count(request, kind, str(status), failed=failed)
        return response

    def _count(self, request: httpx.Request, kind: str, answer: str, *, failed: bool) -> None:
        with self._lock:
            self.kinds[kind] += 1
            self.answers[f"{request.method} {answer}"] += 1
            if failed:
                self.failed += 1
                if len(self.examples) < 10:
                    self.examples.append(f"{request.method} {request.url.path} -> {answer}")

    def close(self) -> None:
        self.inner.close()

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"total": sum(self.kinds.values()), "by_kind": dict(self.kinds), "by_answer": dict(self.answers),
                    "failed": self.failed, "failed_examples": list(self.examples)}  # fmt: skip


def connect(info: dict[str, str], transport: httpx.BaseTransport) -> Any:
    return ims_nb.connect(info["region"], ak=info["ak"], sk=info["sk"], project_id=info["project_id"],
                          endpoint=info["endpoint"], transport=transport)  # fmt: skip


# --- memory --------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time a process has used (``/proc/<pid>/stat``), or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int | None:
    """The resident set of a process (``VmRSS``), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


@dataclass
class Sampler:
    """Samples the RSS of named processes every ``every`` real seconds in a thread, with the simulated time."""

    pids: dict[str, int]
    every: float
    sim_time: SimClock
    samples: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def sample(self) -> dict[str, Any]:
        row = {"real": time.time(), "sim": self.sim_time()} | {name: rss_bytes(pid) for name, pid in self.pids.items()}
        row["cpu"] = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.samples.append(row)
        return row

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def memory(samples: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """Start, end, peak and the growth over the second half of the run, in MiB, of one process."""
    values = [s[name] for s in samples if s.get(name)]
    if not values:
        return {"samples": 0}
    mid = values[len(values) // 2]
    return {"samples": len(values), "start_mib": values[0] / MiB, "end_mib": values[-1] / MiB,
            "peak_mib": max(values) / MiB, "min_mib": min(values) / MiB, "mid_mib": mid / MiB,
            "growth_mib": (values[-1] - values[0]) / MiB,
            "second_half_growth_mib": (values[-1] - mid) / MiB}  # fmt: skip


def flat(mem: dict[str, Any], *, ratio: float = 1.5, slack_mib: float = 50.0) -> bool:
    """The bound the soak holds memory to: end RSS < start x ``ratio`` + ``slack_mib``."""
    return bool(mem.get("samples")) and mem["end_mib"] < mem["start_mib"] * ratio + slack_mib


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
    command = [sys.executable, "-m", __spec__.name, "watcher", "--ledger", str(folder / "ledger.sqlite"),
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


# --- the driver: batches over the simulated day ------------------------------------------------------


@dataclass(frozen=True)
class SimClock:
    """The simulator's clock, read once (``/_sim/clock``) and then computed locally from real time."""

    anchor_sim: float
    anchor_real: float
    scale: float

    @classmethod
    def of(cls, endpoint: str, scale: float) -> SimClock:
        before = time.time()
        answer = httpx.get(f"{endpoint}/_sim/clock", timeout=30).raise_for_status().json()
        return cls(answer["timestamp"], (before + time.time()) / 2, scale)

    def at(self, real: float) -> float:
        """The simulated time at POSIX time ``real``."""
        return self.anchor_sim + (real - self.anchor_real) * self.scale

    def __call__(self) -> float:
        return self.at(time.time())


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


if __name__ == "__main__":
    sys.exit(main())
