"""Estate benchmark: one inventory of 10 regions, fanned out by ``connect_estate`` against region after region.

    python -m benchmarks.bench_estate [--regions 10] [--images 2000] [--latency 0.1] [--repeats 3]
                                      [--one-process | --in-process] [--output PATH]

The simulator (``python -m ims_nb sim --regions ... --seed 0 --manual-clock``) serves ``--regions`` real regions
of the client's region table, each on its own endpoint with ``--images`` images (the first region adds its
sub-project, ``cn-north-4_dev``, with images of its own), and ``--latency`` seconds added to every request of
every region through each endpoint's control plane (``POST /_sim/latency``). It runs out of the measured
process, as a cloud does: by default one child process per region, each serving its own region's endpoint (the
same seed gives every child the same estate), so no region's JSON waits for another's in one server loop;
``--one-process``: one child serves them all; ``--in-process``: the old way, the simulator's threads in this
interpreter, its CPU competing with the client's for the GIL. Children are stopped at the end, error or not.
Each run opens its clients afresh (connection set-up counts, as it would for a notebook's call). After one
warm-up run of each, the repeats are interleaved (a, b, c, d, a, b, ...), the garbage of one run collected
before the next starts (untimed). Every run must return every image of every project (as many as each
project's own listing returned before the latency was added; in process, as the simulator's state holds).

(a) region after region: for each (region, project), ``ims_nb.connect(region, ..., endpoint=, project_id=)``
    and its ``images()``, one after the other, concatenated with ``region``, ``project_id`` and ``project_name``.
(b) each project's own listing, alone (the same calls as one step of (a)); the figure is the slowest's.
(c) ``ims_nb.connect_estate(..., simulator=...).images()``: project discovery (IAM) and the fan-out.
(d) ``images()`` of an estate connected once before the run (reported only: (c) without the discovery).
(e) the floor of (c): the same discovery (``connect_estate``), then every project's pages at once as signed
    ``httpx`` GETs (``AkSkAuth``) decoded with ``orjson``, no records kept and no frame (reported only).
(f) the transfer floor of (c): as (e), but nothing decoded: each page's marker and count are read from its bytes
    (the run's count check guards that reading). What no client that reads the pages can beat (reported only).

The targets are c/a <= 0.2 and c/b <= 1.3, judged on medians (e/b and f/b show what any client would spend on
this machine: when f/b is over 1.3, so is every client's c/b); the CPU column is this process's (the client's;
in process, the simulator's too). The latest numbers go to ``benchmarks/results/estate.json`` (not
in git); the figures and their analysis are in the README's "Estate" subsection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import httpx
import orjson
import pandas as pd

import ims_nb
from benchmarks import harness
from ims_nb.cli._children import stop_child
from ims_nb.client import config
from ims_nb.client.auth import AkSkAuth
from ims_nb.sim import SimInfo, Simulator
from ims_nb.vocab import SCOPE_COLUMNS

PAGE_SIZE = 1000
LATENCY_PATH = "/_sim/latency"
#: Regions of the client's table, the first ``--regions`` of them served (then the rest of the table, in order).
PREFERRED = (
    "cn-north-4", "ap-southeast-1", "ap-southeast-3", "cn-east-3", "cn-south-1",
    "cn-north-1", "cn-east-2", "ap-southeast-2", "af-south-1", "la-south-2",
)  # fmt: skip

#: Variant key -> what it measures, in the order the repeats interleave them.
VARIANTS = {
    "a": "region after region: connect().images()",
    "b": "slowest project alone: connect().images()",
    "c": "connect_estate(...).images()",
    "d": "images() of a connected estate",
    "e": "floor: discovery, raw httpx + orjson",
    "f": "transfer floor: discovery, raw httpx",
}
#: Ratio name -> (numerator, denominator, the largest value that meets the target, or None: reported only).
RATIOS: dict[str, tuple[str, str, float | None]] = {
    "c/a": ("c", "a", 0.2),
    "c/b": ("c", "b", 1.3),
    "d/b": ("d", "b", None),
    "e/b": ("e", "b", None),
    "f/b": ("f", "b", None),
}
PACKAGES = ("ims-nb", "httpx", "pandas", "uvicorn")
#: Where the simulator runs: a child process per region (default), one child process, or this process's threads.
PER_REGION, ONE_PROCESS, IN_PROCESS = "a process per region", "one process", "in process"
SIMULATORS = (PER_REGION, ONE_PROCESS, IN_PROCESS)

Run = Callable[[], tuple[int, float]]  # one full inventory: (images it got, wall seconds it took)


def regions(count: int) -> list[str]:
    """``count`` region ids the client's region table knows, ``PREFERRED`` first."""
    every = list(dict.fromkeys([*PREFERRED, *config.REGIONS]))
    if not 1 <= count <= len(every):
        raise ValueError(f"--regions must be between 1 and {len(every)}")
    return every[:count]


@dataclass(frozen=True)
class Scope:
    """One project of the simulated account: where it is served and how many images its listing must return."""

    region: str
    project_id: str
    project_name: str
    endpoint: str
    images: int


def _endpoints(info: SimInfo) -> dict[str, str]:
    """Each served region's endpoint (a one-region simulator's line has no region map)."""
    return {region: where["endpoint"] for region, where in (info.regions or {info.region: vars(info)}).items()}


def scopes(sim: Simulator) -> list[Scope]:
    """Every project of every region, sub-projects included, as the in-process simulator holds them."""
    found = []
    for simulation, endpoint in zip(sim.simulations, _endpoints(sim.info).values(), strict=True):
        backend = simulation.backend
        live = [i for i in backend.images.values() if i.get("status") != "deleted"]
        for p in backend.projects:
            found.append(Scope(p.region, p.id, p.name, endpoint, sum(1 for i in live if backend.sees(p.id, i))))
    return found


def listed_scopes(info: SimInfo) -> list[Scope]:
    """Every project of the line's project map, with the images its own listing returns (before any latency):
    a child simulator's state is not ours to read."""
    projects = info.projects or [{"id": info.project_id, "name": info.region, "region": info.region}]
    endpoints = _endpoints(info)
    found = [Scope(p["region"], p["id"], p["name"], endpoints[p["region"]], 0) for p in projects]
    return [replace(scope, images=len(_project_frame(info, scope))) for scope in found]


Served = tuple[SimInfo, list[Scope]]  # how to reach the simulator, and every project it serves


@contextlib.contextmanager
def served_in_process(names: Sequence[str], images: int) -> Iterator[Served]:
    """The old way: the simulator's threads in this process (its CPU competes with the client's for the GIL)."""
    with Simulator(regions=names, seed=0, images=images, manual_clock=True) as sim:
        yield sim.info, scopes(sim)


def _start(command: Sequence[str], stack: contextlib.ExitStack) -> subprocess.Popen[str]:
    """One child simulator, stopped (SIGTERM, then SIGKILL) and its pipe closed when ``stack`` closes."""
    child = stack.enter_context(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    stack.callback(stop_child, child)  # runs first: Popen's own exit then closes the pipe and reaps it
    return child


def _line(child: subprocess.Popen[str]) -> dict[str, Any]:
    """The child's one JSON line (as tests/cli read it)."""
    assert child.stdout is not None
    first = child.stdout.readline()
    if not first:
        raise RuntimeError(f"the simulator did not start (exit status {child.wait()})")
    line: dict[str, Any] = json.loads(first)
    return line


@contextlib.contextmanager
def served_by_children(names: Sequence[str], images: int, *, one_process: bool = False) -> Iterator[Served]:
    """``python -m ims_nb sim --regions ...`` as child processes: one per region (default), each serving its own
    region's endpoint, as a cloud's regions are separate services (the same seed gives each child the same
    estate: ids, credentials, images); or ``one_process`` serving them all from one event loop."""
    command = [sys.executable, "-m", "ims_nb", "sim", f"--regions={','.join(names)}", f"--images={images}",
               "--seed=0", "--manual-clock"]  # fmt: skip
    with contextlib.ExitStack() as stack:
        children = [_start(command, stack) for _ in range(1 if one_process else len(names))]
        lines = [_line(child) for child in children]  # started together, read in turn
        info = SimInfo(**lines[0])
        if info.regions is not None and len(lines) > 1:
            info = replace(info, regions={region: lines[n]["regions"][region] for n, region in enumerate(info.regions)})
        yield info, listed_scopes(info)


def _project_frame(info: SimInfo, scope: Scope) -> pd.DataFrame:
    """One project's listing with today's single-region client, opened for it and closed after."""
    with ims_nb.connect(
        scope.region, ak=info.ak, sk=info.sk, endpoint=scope.endpoint, project_id=scope.project_id, page_size=PAGE_SIZE
    ) as client:
        frame = client.images()
    for position, column in enumerate(SCOPE_COLUMNS):
        frame.insert(position, column, pd.array([getattr(scope, column)] * len(frame), dtype="string"))
    return frame


# --- the four variants: each yields a run function ----------------------------------------------------


def _clocked(work: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = work()
    return count, time.perf_counter() - started


@contextlib.contextmanager
def sequential(info: SimInfo, every: Sequence[Scope]) -> Iterator[Run]:
    """(a) every project with its own ``connect()`` and ``images()``, one after the other, then one frame."""
    yield lambda: _clocked(lambda: len(pd.concat([_project_frame(info, s) for s in every], ignore_index=True)))


@contextlib.contextmanager
def slowest_alone(info: SimInfo, every: Sequence[Scope]) -> Iterator[Run]:
    """(b) each project's listing timed alone; the run's time is the slowest one's."""

    def run() -> tuple[int, float]:
        timed = [_clocked(partial(lambda s: len(_project_frame(info, s)), s)) for s in every]
        return sum(count for count, _ in timed), max(seconds for _, seconds in timed)

    yield run


def _estate(info: SimInfo, every: Sequence[Scope]) -> ims_nb.Estate:
    regions = list(dict.fromkeys(s.region for s in every))
    return ims_nb.connect_estate(regions, simulator=info, ak=info.ak, sk=info.sk, page_size=PAGE_SIZE)


@contextlib.contextmanager
def estate_cold(info: SimInfo, every: Sequence[Scope]) -> Iterator[Run]:
    """(c) ``connect_estate`` (IAM discovery) and its ``images()``, closed after."""

    def work() -> int:
        with _estate(info, every) as estate:
            return len(estate.images())

    yield lambda: _clocked(work)


@contextlib.contextmanager
def estate_warm(info: SimInfo, every: Sequence[Scope]) -> Iterator[Run]:
    """(d) ``images()`` of one estate connected before the runs."""
    with _estate(info, every) as estate:
        yield lambda: _clocked(lambda: len(estate.images()))


# --- the floors of (c) ---------------------------------------------------------------------------------

Page = Callable[[bytes], tuple[int, str | None]]  # a page's body -> (records in it, the marker of the next)
ID_KEY = b'"id":'
ID_VALUE = re.compile(rb'"id":\s*"([^"]*)"')


def decoded(body: bytes) -> tuple[int, str | None]:
    """(e): the page decoded, as any client must before it can use a record."""
    images = orjson.loads(body)["images"]
    return len(images), images[-1]["id"] if images else None


def undecoded(body: bytes) -> tuple[int, str | None]:
    """(f): the count and the last id read from the bytes the simulator writes (one ``"id":`` key per record,
    none nested), nothing decoded."""
    last = ID_VALUE.match(body, body.rfind(ID_KEY))
    return (body.count(ID_KEY), last.group(1).decode()) if last else (0, None)


async def _raw_scope(http: httpx.AsyncClient, endpoint: str, auth: httpx.Auth, page: Page) -> int:
    marker, count = None, 0
    while True:
        params = httpx.QueryParams({"limit": PAGE_SIZE, **({"marker": marker} if marker else {})})
        response = await http.get(endpoint + "/v2/cloudimages", params=params, auth=auth)
        response.raise_for_status()
        got, marker = page(response.content)
        count += got
        if got < PAGE_SIZE:
            return count


async def _raw_estate(info: SimInfo, estate: ims_nb.Estate, page: Page) -> int:
    endpoints = _endpoints(info)
    async with httpx.AsyncClient(timeout=30, verify=False) as http:  # http endpoints: no CA store to load
        counts = await asyncio.gather(*(
            _raw_scope(http, endpoints[p.region], AkSkAuth(info.ak, info.sk, project_id=p.id), page)
            for p in estate.projects
        ))  # fmt: skip
    return sum(counts)


def _floor(page: Page) -> Callable[[SimInfo, Sequence[Scope]], contextlib.AbstractContextManager[Run]]:
    @contextlib.contextmanager
    def opener(info: SimInfo, every: Sequence[Scope]) -> Iterator[Run]:
        """(e, f) ``connect_estate``'s discovery, then every project's pages with raw ``httpx``."""

        def work() -> int:
            with _estate(info, every) as estate:
                return asyncio.run(_raw_estate(info, estate, page))

        yield lambda: _clocked(work)

    return opener


OPENERS: dict[str, Callable[[SimInfo, Sequence[Scope]], contextlib.AbstractContextManager[Run]]] = {
    "a": sequential,
    "b": slowest_alone,
    "c": estate_cold,
    "d": estate_warm,
    "e": _floor(decoded),
    "f": _floor(undecoded),
}


# --- measuring ---------------------------------------------------------------------------------------


def timed(key: str, run: Run, expected: int) -> tuple[float, float]:
    """(wall seconds by the run's own measure, the process's CPU seconds in the whole run, simulator included),
    after collecting the garbage of the last run."""
    gc.collect()
    cpu = time.process_time()
    count, seconds = run()
    cpu = time.process_time() - cpu
    assert count == expected, f"variant ({key}) {VARIANTS[key]} got {count} images, not {expected}"
    return seconds, cpu


def measure(info: SimInfo, every: Sequence[Scope], repeats: int) -> dict[str, list[tuple[float, float]]]:
    """One warm-up run of each variant, then ``repeats`` interleaved rounds; (wall, CPU) seconds of each."""
    expected = sum(s.images for s in every)
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in VARIANTS}
    with contextlib.ExitStack() as stack:
        runs = {key: stack.enter_context(OPENERS[key](info, every)) for key in VARIANTS}
        for key, run in runs.items():
            timed(key, run, expected)
        for _ in range(repeats):
            for key, run in runs.items():
                times[key].append(timed(key, run, expected))
    return times


def add_latency(info: SimInfo, seconds: float) -> None:
    """``POST /_sim/latency`` on every region's endpoint."""
    for endpoint in _endpoints(info).values():
        httpx.post(endpoint + LATENCY_PATH, json={"seconds": seconds}).raise_for_status()


def ratios(variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each ratio of medians judged against its target, with the ratios of the fastest and slowest runs (spread)."""
    return harness.ratios(variants, RATIOS, {"of_minimums": "min_s", "of_maximums": "max_s"})


# --- reporting ---------------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    """The table and the ratios as text."""
    lines = [
        f"Estate of {results['regions']} regions ({results['projects']} projects), {results['images']:,} images, "
        f"+{results['latency_s'] * 1000:.0f} ms per request, pages of {results['page_size']}, "
        f"{results['repeats']} interleaved repeats after one warm-up each, simulator: {results['simulator']}; "
        + harness.machine_text(results),
        "",
        f"{'variant':<50} {'median s':>9} {'min s':>8} {'max s':>8} {'CPU s':>7}",
    ]
    for key, label in VARIANTS.items():
        s = results["variants"][key]
        lines.append(
            f"{f'({key}) {label}':<50} {s['median_s']:>9.3f} {s['min_s']:>8.3f} {s['max_s']:>8.3f} "
            f"{s['median_cpu_s']:>7.3f}"
        )
    lines += ["", f"{'ratio':<6} {'of medians':>10} {'of minimums':>12} {'of maximums':>12}  target (on medians)"]
    for name, ratio in results["ratios"].items():
        target = ratio["target_max"]
        verdict = "reported only" if target is None else f"<= {target:.2f}  {'met' if ratio['met'] else 'MISSED'}"
        lines.append(
            f"{name:<6} {ratio['value']:>10.3f} {ratio['of_minimums']:>12.3f} {ratio['of_maximums']:>12.3f}  {verdict}"
        )
    return "\n".join(lines)


def run_benchmark(
    region_count: int, images: int, latency: float, repeats: int, *, where: str = PER_REGION
) -> dict[str, Any]:
    """Start the estate simulator (``where``: one of ``SIMULATORS``), add the latency, measure the four variants,
    return the results."""
    names = regions(region_count)
    served = (
        served_in_process(names, images)
        if where == IN_PROCESS
        else served_by_children(names, images, one_process=where == ONE_PROCESS)
    )
    with served as (info, every):
        add_latency(info, latency)
        times = measure(info, every, repeats)
    variants = {key: _variant(key, times[key]) for key in VARIANTS}
    return {
        "benchmark": "estate",
        "regions": region_count,
        "projects": len(every),
        "images_per_region": images,
        "images": sum(s.images for s in every),
        "latency_s": latency,
        "page_size": PAGE_SIZE,
        "repeats": repeats,
        "simulator": where,
        "machine": harness.machine(PACKAGES),
        "variants": variants,
        "ratios": ratios(variants),
    }


def _variant(key: str, runs: Sequence[tuple[float, float]]) -> dict[str, Any]:
    wall = [seconds for seconds, _ in runs]
    cpu = [seconds for _, seconds in runs]
    return {
        "label": VARIANTS[key],
        "times_s": wall,
        "median_s": statistics.median(wall),
        "min_s": min(wall),
        "max_s": max(wall),
        "cpu_s": cpu,  # this process's CPU in the run: the client's (with --in-process, the simulator's too)
        "median_cpu_s": statistics.median(cpu),
    }


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regions", type=int, default=10, help="regions in the simulator (default 10)")
    parser.add_argument("--images", type=int, default=2000, help="images per region (default 2000)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to each request (default 0.1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each variant (default 3)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--one-process", action="store_true", help="one child simulator serves every region (one event loop)"
    )
    where.add_argument(
        "--in-process", action="store_true", help="the simulator serves from this process's threads (the old way)"
    )


def check(args: argparse.Namespace) -> str | None:
    if args.repeats < 1:
        return "--repeats must be at least 1"
    if args.latency < 0:
        return "--latency must not be negative"
    try:
        regions(args.regions)
    except ValueError as exc:
        return str(exc)
    return None


def _run(args: argparse.Namespace) -> dict[str, Any]:
    where = IN_PROCESS if args.in_process else ONE_PROCESS if args.one_process else PER_REGION
    return run_benchmark(args.regions, args.images, args.latency, args.repeats, where=where)


BENCH = harness.Bench("estate", __doc__, options, _run, report, check)

main = partial(harness.main, BENCH)  # main(argv) -> exit status


if __name__ == "__main__":
    harness.run_module(BENCH)
