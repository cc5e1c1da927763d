"""Fault matrix: a 10,000-image listing and a 200-image export batch under each injected fault.

    python -m benchmarks.drills.fault_matrix [--images 10000] [--batch 200] [--only NAME ...] [--output PATH]

Each fault runs twice against a freshly reset world (seed ``SEED``, manual clock): once for the listing
(``client.images()`` over every image), once for the batch (``plan_exports`` of ``--batch`` images the clean
listing shows to be exportable, ``launch`` with ``LAUNCH_CONCURRENCY`` threads into a real ``Ledger``, then
``watch`` on the simulated clock: its ``sleep`` advances the simulator, so hours of exports take seconds).
The faults are the simulator's own (``POST /_sim/faults``), spread over the whole run with ``every`` and
``burst`` (of each ``every`` requests the last ``burst`` are hit; the listing, 11 requests, gets them every
``LISTING_EVERY``) and cleared when the run ends; two are events set off by the client's own requests: a restart
(``ims-nb sim --state`` killed with SIGKILL and started again on its port) and an IAM token expiry
(``POST /_sim/tokens/expire`` under a password login).

The client is ``ims_nb.connect`` with ``RETRY`` (the default five tries, delays 100 times shorter) over a
``Recorder`` transport, which notes every request it sends: the phase, the kind, and whether it sends a request
object already sent (a retry of ``_send`` or a replay of the auth flow). A batch is judged by the simulator's
own record (``GET /_sim/state``): one export job per planned image and no other; every ledger row final, with a
job id of one of those jobs or a "job id unknown" note, the rows and the jobs one to one (by target). A listing
is judged against a clean listing of the same world: every id, none twice. Every exception is a failure.

The table goes to stdout (a failed row says why; the exit status is 0 once the matrix has run) and the latest
figures to ``benchmarks/results/fault_matrix.json`` (not in git). ``make soak`` runs it; ``make test`` runs a
smaller batch of the same matrix (``tests/exports/test_fault_matrix.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd

import ims_nb
from benchmarks import harness
from benchmarks.drills.judging import SimClock, judge_batch
from ims_nb.client.retry import RetryPolicy
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import JOB_ID_UNKNOWN, launch, plan_exports
from ims_nb.exports.watch import watch
from ims_nb.rules import SIMULATOR_PROFILE
from ims_nb.sim import Simulator

#: A world whose first 260 export jobs all succeed, so that "exported once" means one job per image, each ending
#: verified (a job whose id was lost and which then failed is sent again, by design: see ``ims_nb.exports.plan``).
SEED = 30581
BUCKET = "ims-exports-cn-north-4"
KEY_TEMPLATE = "fault-matrix/{id8}.{ext}"
#: The default policy (five tries, full jitter) with delays 100 times shorter: the faults, not the waits, are tested.
RETRY = RetryPolicy(max_attempts=5, base_delay=0.005, max_delay=0.2, max_elapsed=90.0)
LAUNCH_CONCURRENCY = 4
#: ``watch`` on the simulated clock: polls 5 to 30 minutes apart, a rate cap that never binds, a week at most.
WATCH_OPTIONS: dict[str, Any] = {"interval": 300.0, "max_interval": 1800.0, "max_rate": 1000.0,
                                 "timeout": 7 * 24 * 3600.0}  # fmt: skip
#: Paths of the JSON APIs (IMS, IAM); OBS paths start with a bucket name.
JSON_APIS = r"^/v\d"
SLOW_TIMEOUT = 0.25
HELD_POST = 0.05
#: A listing of 10,000 images is 11 requests: its faults come (in the same kind and bursts) every 5 requests.
LISTING_EVERY = 5
PHASES = ("listing", "plan", "launch", "watch")


@dataclass(frozen=True)
class Scenario:
    """One fault: the simulator rules it installs, or the event it sets off, and the client's timeout."""

    name: str
    injected: str  # in words, for the table
    rules: tuple[dict[str, Any], ...] = ()
    event: str | None = None  # "restart" or "expire"
    timeout: float | None = None


def _rule(kind: str, every: int, burst: int = 1, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "every": every, "burst": burst, "count": None, **fields}


SCENARIOS = (
    Scenario("none", "nothing (the baseline)"),
    Scenario("429 bursts", "429 APIGW.0308 to 3 requests in every 30", (_rule("throttle", 30, 3),)),
    Scenario(
        "500",
        "500 APIGW.0601 to every 15th request",
        (_rule("response", 15, status=500, body='{"error_code": "APIGW.0601", "error_msg": "Internal error."}'),),
    ),
    Scenario(
        "503",
        "503 to 2 requests in every 25",
        (_rule("response", 25, 2, status=503, body='{"error_code": "APIGW.0503", "error_msg": "Unavailable."}'),),
    ),
    Scenario("dropped connections", "connection closed unanswered: every 20th request", (_rule("drop", 20),)),
    Scenario(
        "slower than the timeout",
        f"every 50th request answered after {2 * SLOW_TIMEOUT:g} s; client timeout {SLOW_TIMEOUT:g} s",
        (_rule("latency", 50, delay=2 * SLOW_TIMEOUT),),
        timeout=SLOW_TIMEOUT,
    ),
    Scenario(
        "malformed JSON",
        "200 with a truncated JSON body: every 20th IMS/IAM request",
        (_rule("response", 20, status=200, body='{"images": [{"id": "', path=JSON_APIS),),
    ),
    Scenario(
        "simulator restart",
        "`ims-nb sim --state` SIGKILLed and restarted on its port: mid-listing, mid-launch (export POSTs held "
        f"{HELD_POST:g} s at the server, so that the kill cuts some off), mid-watch",
        (_rule("latency", 1, method="POST", path="/file$", delay=HELD_POST),),
        event="restart",
    ),
    Scenario(
        "token expiry",
        "every IAM token expired: mid-listing, mid-launch, twice mid-watch (password login)",
        event="expire",
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


# --- the client side: every request recorded, events set off by the n-th request of a kind ---------------


def kind_of(request: httpx.Request) -> str:
    """list, export, poll, login, obs (bucket and object HEADs), or other."""
    method, path = request.method, request.url.path
    if method == "GET" and path == "/v2/cloudimages":
        return "list"
    if method == "POST" and path.endswith("/file"):
        return "export"
    if method == "GET" and ("/cloudimages/job/" in path or "/jobs/" in path):
        return "poll"
    if method == "POST" and path == "/v3/auth/tokens":
        return "login"
    if method == "HEAD":
        return "obs"
    return "other"


@dataclass(frozen=True)
class Entry:
    phase: str
    kind: str
    path: str
    resent: bool  # the same request object sent again: a retry, or an auth flow's replay


@dataclass
class Trigger:
    """Run ``action`` before the ``nth`` first send of a ``kind`` of request in ``phase``."""

    phase: str
    kind: str
    nth: int
    action: Callable[[], None]
    fired: bool = False


class Recorder(httpx.BaseTransport):
    """Notes every request, then sends it through ``inner``; runs due triggers first, holding other requests.

    Requests already on the wire when a trigger fires (a restart kills the server) meet their fate; those that
    arrive while it runs wait for it to end, as a retry would wait out a restart.
    """

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.phase = "setup"
        self.entries: list[Entry] = []
        self.triggers: list[Trigger] = []
        self._sent: dict[int, httpx.Request] = {}  # keeps each request alive, so that ids are not reused
        self._firsts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._open.wait()
        kind = kind_of(request)
        with self._lock:
            resent = id(request) in self._sent
            self._sent[id(request)] = request
            self.entries.append(Entry(self.phase, kind, request.url.path, resent))
            self._firsts[(self.phase, kind)] += not resent
            due = [t for t in self.triggers if not t.fired and (t.phase, t.kind) == (self.phase, kind)
                   and self._firsts[(self.phase, kind)] >= t.nth]  # fmt: skip
            for trigger in due:
                trigger.fired = True
        if due:
            self._open.clear()
            try:
                for trigger in due:
                    trigger.action()
            finally:
                self._open.set()
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def tally(entries: Sequence[Entry]) -> dict[str, Any]:
    """Requests, retries (repeated request objects), re-sent exports (a new POST for an image already POSTed)."""
    exports = Counter(e.path for e in entries if e.kind == "export" and not e.resent)
    return {
        "requests": len(entries),
        "retries": sum(e.resent for e in entries),
        "resent_exports": sum(n - 1 for n in exports.values()),
        "logins": sum(e.kind == "login" for e in entries),
        "by_phase": {p: n for p in PHASES if (n := sum(e.phase == p for e in entries))},
        "by_kind": dict(Counter(e.kind for e in entries)),
    }


class ObsThroughKeys:
    """A password-login client whose OBS calls go through an AK/SK client of the same user.

    An IAM token cannot sign OBS requests (``ImsClient`` raises ``ConfigError`` for them), so planning and
    verifying need the user's keys; everything IMS goes through the token.
    """

    OBS_METHODS = frozenset({"bucket", "buckets", "object_exists", "object_size"})

    def __init__(self, ims: Any, obs: Any) -> None:
        self.ims, self.obs = ims, obs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.obs if name in self.OBS_METHODS else self.ims, name)


# --- worlds: the embedded simulator (reset between runs), or a process with --state (restarted) ----------


class EmbeddedWorld:
    """One in-process simulator for every run; ``prepare`` resets it to the seed (no jobs, no faults)."""

    def __init__(self, images: int) -> None:
        self.images = images
        self.simulator = Simulator(seed=SEED, images=images, manual_clock=True).start()
        self.info = self.simulator.info.as_json_dict()
        self.control = httpx.Client(base_url=f"{self.info['endpoint']}/_sim", timeout=60.0)

    def prepare(self) -> None:
        self.control.post("/reset", json={"seed": SEED, "images": self.images}).raise_for_status()

    def restart(self) -> None:
        raise RuntimeError("the embedded simulator is not restarted; use a ProcessWorld")

    def close(self) -> None:
        self.control.close()
        self.simulator.stop()


class ProcessWorld:
    """``ims-nb sim --state PATH`` in a subprocess; ``restart`` kills it (SIGKILL) and starts it on the same port."""

    def __init__(self, images: int, folder: Path) -> None:
        self.folder = folder
        self.argv = [sys.executable, "-m", "ims_nb", "sim", "--seed", str(SEED), "--images", str(images),
                     "--manual-clock", "--state", str(folder / "sim-state.sqlite")]  # fmt: skip
        self.restarts = 0
        self.process, self.info = self._start(0)
        self.port = urlsplit(self.info["endpoint"]).port
        self.control = httpx.Client(base_url=f"{self.info['endpoint']}/_sim", timeout=60.0)

    def _start(self, port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
        with (self.folder / "sim.err").open("a") as errors:
            process = subprocess.Popen([*self.argv, "--port", str(port)], stdout=subprocess.PIPE, stderr=errors,
                                       text=True)  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=30)
            raise RuntimeError(f"ims-nb sim did not start: {(self.folder / 'sim.err').read_text()[-500:]}")
        return process, json.loads(line)

    def prepare(self) -> None:
        """A new process world starts at the seed: nothing to reset."""

    def restart(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process, info = self._start(self.port or 0)
        if info["endpoint"] != self.info["endpoint"]:
            raise RuntimeError(f"the simulator came back at {info['endpoint']}, not {self.info['endpoint']}")
        self.restarts += 1

    def close(self) -> None:
        self.control.close()
        self.process.terminate()
        self.process.communicate(timeout=30)


World = EmbeddedWorld | ProcessWorld


# --- one run -------------------------------------------------------------------------------------------------


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


def run_batch(world: World, scenario: Scenario, images: pd.DataFrame, folder: Path) -> dict[str, Any]:
    """Plan, launch and watch ``images`` (each exportable) under the fault; judged by the simulator's jobs."""
    world.prepare()
    recorder = Recorder()
    recorder.triggers = triggers(scenario, world, ["launch", "watch"], len(images), 0)
    events_before = getattr(world, "restarts", 0)
    error, planned, frame = None, [], None
    ledger_path = folder / f"ledger-{time.monotonic_ns()}.sqlite"
    started = time.perf_counter()
    with (
        connected(world, scenario, recorder) as client,
        Ledger(ledger_path) as ledger,
        faults_on(world, scenario.rules) as hits,
    ):
        try:
            recorder.phase = "plan"
            plan = plan_exports(images, bucket=BUCKET, key_template=KEY_TEMPLATE, client=client,
                                profile=SIMULATOR_PROFILE)  # fmt: skip
            planned = plan.loc[plan["exportable"].fillna(False).astype(bool), "image_id"].tolist()
            recorder.phase = "launch"
            launch(plan, client=client, ledger=ledger, concurrency=LAUNCH_CONCURRENCY, max_rate=1000.0)
            recorder.phase = "watch"
            clock = SimClock(world.control)
            frame = watch(ledger, client=client, clock=clock, sleep=clock.sleep, **WATCH_OPTIONS)
        except Exception as exc:  # noqa: BLE001 - every failure is a finding, reported
            error = _error(exc)
        rows = ledger.rows()
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


# --- the matrix ----------------------------------------------------------------------------------------------


@dataclass
class Setup:
    """What every run shares: the world's size, the clean listing and the batch picked from it."""

    images: int
    batch: int
    expected: list[str] = field(default_factory=list)
    chosen: pd.DataFrame | None = None

    @property
    def pages(self) -> int:
        return -(-self.images // 1000)


def clean_setup(world: EmbeddedWorld, images: int, batch: int) -> Setup:
    """A clean listing of the world, and the first ``batch`` images a plan without lookups finds exportable."""
    world.prepare()
    info = world.info
    with ims_nb.connect(ak=info["ak"], sk=info["sk"], project_id=info["project_id"],
                        endpoint=info["endpoint"]) as client:  # fmt: skip
        frame = client.images()
    plan = plan_exports(frame, bucket=BUCKET, key_template=KEY_TEMPLATE, profile=SIMULATOR_PROFILE)
    ids = plan.loc[plan["exportable"].fillna(False).astype(bool), "image_id"].head(batch)
    if len(ids) < batch:
        raise RuntimeError(f"only {len(ids)} exportable images; raise --images")
    chosen = frame[frame["id"].isin(set(ids))].reset_index(drop=True)
    return Setup(images, batch, frame["id"].tolist(), chosen)


@contextlib.contextmanager
def world_for(scenario: Scenario, embedded: EmbeddedWorld, images: int, folder: Path) -> Iterator[World]:
    """The embedded world, or for the restart scenario a new simulator process with a state file."""
    if scenario.event != "restart":
        yield embedded
        return
    process = ProcessWorld(images, folder)
    try:
        yield process
    finally:
        process.close()


def run_scenario(scenario: Scenario, embedded: EmbeddedWorld, setup: Setup, folder: Path) -> dict[str, Any]:
    assert setup.chosen is not None
    with world_for(scenario, embedded, setup.images, folder) as world:
        listing = run_listing(world, scenario, setup.expected, setup.pages)
        batch = run_batch(world, scenario, setup.chosen, folder)
    return {"fault": scenario.name, "injected_how": scenario.injected, "listing": listing, "batch": batch,
            "ok": not listing["problems"] and not batch["problems"]}  # fmt: skip


def run_matrix(images: int, batch: int, names: Sequence[str], folder: Path) -> dict[str, Any]:
    embedded = EmbeddedWorld(images)
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # the connections the simulator drops on purpose
    try:
        setup = clean_setup(embedded, images, batch)
        rows = []
        for name in names:
            started = time.perf_counter()
            row = run_scenario(BY_NAME[name], embedded, setup, folder)
            row["wall_s"] = time.perf_counter() - started
            rows.append(row)
            print(f"  {name}: {'ok' if row['ok'] else 'FAILED'} in {row['wall_s']:.1f} s", file=sys.stderr)
    finally:
        embedded.close()
    baseline = next((r for r in rows if r["fault"] == "none"), None)
    for row in rows:
        row["requests"] = row["listing"]["requests"] + row["batch"]["requests"]
        row["over_baseline"] = None if baseline is None else row["requests"] - baseline["requests"]
    return {"benchmark": "fault_matrix", "images": images, "batch": batch, "seed": SEED, "retry": repr(RETRY),
            "machine": harness.machine(),
            "wall_s": sum(r["wall_s"] for r in rows), "rows": rows}  # fmt: skip


def result_text(row: dict[str, Any]) -> str:
    listing, batch = row["listing"], row["batch"]
    problems = [f"listing: {p}" for p in listing["problems"]] + [f"batch: {p}" for p in batch["problems"]]
    if problems:
        return "FAIL: " + "; ".join(problems)
    lost = f" ({batch['job_id_unknown']} job id unknown)" if batch["job_id_unknown"] else ""
    return (f"ok: {listing['listed']:,} listed once; {batch['jobs']} exported once; "
            f"{batch['rows']} ledger rows verified{lost}")  # fmt: skip


def report(results: dict[str, Any]) -> str:
    """The matrix as a Markdown table (the README quotes it)."""
    lines = [
        f"Listing {results['images']:,} images and exporting {results['batch']} (seed {results['seed']}); "
        f"{results['wall_s']:.0f} s in all",
        "",
        "| fault | injected | requests | over baseline | retries | re-sent exports | result |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in results["rows"]:
        listing, batch = row["listing"], row["batch"]
        over = "" if row["over_baseline"] is None else f"{row['over_baseline']:+,}"
        lines.append(
            f"| {row['fault']} | {listing['injected'] + batch['injected']:,} | {row['requests']:,} | {over} | "
            f"{listing['retries'] + batch['retries']:,} | {batch['resent_exports']:,} | {result_text(row)} |"
        )
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=10_000, help="images in the world (default 10000)")
    parser.add_argument("--batch", type=int, default=200, help="images exported (default 200)")
    parser.add_argument("--only", nargs="+", choices=list(BY_NAME), default=list(BY_NAME), help="faults to run")


def check(args: argparse.Namespace) -> str | None:
    return "need --batch >= 2 and --images >= 1000" if args.batch < 2 or args.images < 1000 else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    names = ["none", *[n for n in args.only if n != "none"]]
    with tempfile.TemporaryDirectory(prefix="ims-nb-fault-matrix-") as folder:
        return run_matrix(args.images, args.batch, names, Path(folder))


#: A failed row is a finding, reported in the table (exit 0); tests/exports/test_fault_matrix.py judges in `make test`.
BENCH = harness.Bench("fault_matrix", __doc__, options, run, report, check)

main = partial(harness.main, BENCH)  # main(argv) -> exit status


if __name__ == "__main__":
    harness.run_module(BENCH)
