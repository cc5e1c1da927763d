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
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

import ims_nb
from benchmarks import harness
from benchmarks.drills.fault_matrix.recording import Recorder, tally
from benchmarks.drills.fault_matrix.runs import connected, run_batch, run_listing
from benchmarks.drills.fault_matrix.scenarios import (
    BUCKET,
    BY_NAME,
    KEY_TEMPLATE,
    RETRY,
    SCENARIOS,
    SEED,
    WATCH_OPTIONS,
    Scenario,
)
from benchmarks.drills.fault_matrix.worlds import EmbeddedWorld, world_for
from ims_nb.exports.plan import plan_exports
from ims_nb.rules import SIMULATOR_PROFILE

__all__ = [
    "BENCH",
    "BUCKET",
    "BY_NAME",
    "KEY_TEMPLATE",
    "SCENARIOS",
    "WATCH_OPTIONS",
    "EmbeddedWorld",
    "Recorder",
    "clean_setup",
    "connected",
    "main",
    "run_batch",
    "run_listing",
    "tally",
    "world_for",
]


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
