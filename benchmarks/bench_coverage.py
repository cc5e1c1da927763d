"""Coverage benchmark: ``ims_nb.coverage`` of an estate's images, ledger and bucket objects, CPU time without I/O.

    python -m benchmarks.bench_coverage [--regions 10] [--images 2000] [--ledger-rows 5000] [--objects 5000]
                                        [--repeats 3] [--output PATH]

Built once, untimed: ``--regions`` regions with one project each and ``--images`` seeded private images each
(``ims_nb.sim.inventory.build_inventory``, another world per region) framed as ``estate.images()`` frames them;
a ledger file with ``--ledger-rows`` rows claimed through each scope's client (so each row carries its scope's
identity): 80 % verified (``end_time`` set), 10 % failed, 10 % still running; and the objects of each region's
bucket ``bench-{region}``, ``--objects`` in all: the verified exports' objects (minus one in ten, "deleted"),
the rest objects made outside the ledger whose key names an image (``console/{id}.qcow2``). The clients are
real ``ImsClient`` objects of each scope pointed at a closed port: nothing is sent.

Timed: ``coverage(images, ledger, clients, buckets="bench-{region}", key_template=..., objects=listed)``: the
listings are given as the frames ``client.objects`` would return (``objects=``), so no request is sent and the
figure is the CPU part (the ledger's SQLite reads are in it). After one warm-up run, ``--repeats`` runs,
garbage collected before each; reported: the median of ``time.process_time`` (CPU of the process) and of
``time.perf_counter`` (wall). The goal is ``GOAL_CPU_S`` (2 s) of CPU for 10 x 2,000 images, 5,000 ledger rows
and 5,000 objects. Each run must give the statuses the inputs make (covered, outside the ledger, failed,
in-progress, never), so the run cannot look fast by doing less. The latest numbers go to
``benchmarks/results/coverage.json`` (not in git).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks import harness
from ims_nb.client import ImsClient, connect
from ims_nb.client.obs_listing import objects_frame
from ims_nb.coverage import coverage
from ims_nb.exports.identity import scoped
from ims_nb.exports.ledger import Ledger
from ims_nb.frames import images_frame
from ims_nb.sim.inventory import build_inventory
from ims_nb.vocab import Coverage, Scope, State, Target

GOAL_CPU_S = 2.0
REGIONS = ("cn-north-4", "cn-north-9", "cn-east-3", "cn-east-4", "cn-south-1", "cn-southwest-2",
           "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "af-south-1", "la-north-2", "la-south-2",
           "tr-west-1", "me-east-1")  # fmt: skip
BUCKET = "bench-{region}"
KEY_TEMPLATE = "exports/{project}/{name}-{id8}.{ext}"
#: Nothing listens there: a client that sent a request would fail the run.
NOWHERE = "http://127.0.0.1:9"
EXPECTED = (Coverage.COVERED, Coverage.OUTSIDE, Coverage.FAILED, Coverage.IN_PROGRESS, Coverage.NEVER)


def estate_images(regions: int, images: int) -> tuple[pd.DataFrame, dict[Scope, ImsClient]]:
    """Each region's private images with ``region``, ``project_id`` and ``project_name``, and its client."""
    parts, clients = [], {}
    for number, region in enumerate(REGIONS[:regions]):
        project_id = f"{number:02d}" + "0" * 30
        inventory = build_inventory(0, images + 200, region, world=number, project=project_id)
        frame = images_frame(inventory.images)
        frame = frame[frame["image_type"] == "private"].head(images)
        parts.append(frame.assign(region=region, project_id=project_id, project_name=region))
        clients[(region, project_id)] = connect(region, ak="BENCHAK", sk="bench-secret", project_id=project_id,
                                                endpoint=NOWHERE)  # fmt: skip
    frame = pd.concat(parts, ignore_index=True)
    for column in ("region", "project_id", "project_name"):
        frame[column] = frame[column].astype("string")
    return frame, clients


def fill_ledger(ledger: Ledger, images: pd.DataFrame, clients: dict[Scope, ImsClient], rows: int) -> None:
    """``rows`` rows over the scopes' images (the first ones of each), 80 % verified, 10 % failed, 10 % running."""
    per_scope = rows // len(clients)
    for (region, project_id), client in clients.items():
        mine, bound = images[images["project_id"] == project_id].head(per_scope), scoped(ledger, client)
        for number, (image_id, name) in enumerate(zip(mine["id"], mine["name"], strict=True)):
            key = KEY_TEMPLATE.format(project=region, name=name, id8=image_id[:8], ext="qcow2")
            row_id = bound.claim(image_id=image_id, target=Target(BUCKET.format(region=region), key), image_name=name,
                                 file_format="qcow2", quick=False, size_bytes=None, region=region,
                                 project_id=project_id)  # fmt: skip
            assert row_id is not None
            state = State.FAILED if number % 10 == 8 else State.RUNNING if number % 10 == 9 else State.VERIFIED
            end = "2030-01-01T00:00:00Z" if state != State.RUNNING else None
            bound.update(row_id, state=state, job_id=f"job-{region}-{number}", end_time=end)


def bucket_objects(ledger: Ledger, images: pd.DataFrame, total: int) -> pd.DataFrame:
    """The verified exports' objects but one in ten, then objects outside the ledger naming other images."""
    rows = [r for r in ledger.rows() if r["state"] == State.VERIFIED.value]
    kept = [r for number, r in enumerate(rows) if number % 10 != 3][:total]
    records = [_object(r["bucket"], r["object_key"]) for r in kept]
    exported = {r["image_id"] for r in ledger.rows()}
    others = images[~images["id"].isin(exported)]
    per_region = -(-(total - len(records)) // max(1, others["region"].nunique()))
    for region, part in others.groupby("region", sort=True):
        for image_id in part["id"].head(per_region):
            if len(records) < total:
                records.append(_object(BUCKET.format(region=region), f"console/{image_id}.qcow2"))
    return objects_frame(records)


def _object(bucket: str, key: str) -> dict[str, Any]:
    return {"bucket": bucket, "key": key, "size_bytes": 1024, "etag": "0" * 32,
            "last_modified": pd.Timestamp("2030-01-02", tz="UTC"), "storage_class": "STANDARD"}  # fmt: skip


def timed(work: Any) -> tuple[float, float, pd.DataFrame]:
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    frame = work()
    return time.process_time() - cpu, time.perf_counter() - wall, frame


def run_benchmark(regions: int, images: int, ledger_rows: int, objects: int, repeats: int) -> dict[str, Any]:
    built = time.perf_counter()
    frame, clients = estate_images(regions, images)
    with tempfile.TemporaryDirectory() as folder, Ledger(Path(folder) / "ledger.sqlite") as ledger:
        fill_ledger(ledger, frame, clients, ledger_rows)
        listed = bucket_objects(ledger, frame, objects)
        setup_s = time.perf_counter() - built
        work = partial(coverage, frame, ledger, clients, buckets=BUCKET, key_template=KEY_TEMPLATE, objects=listed)
        timed(work)  # warm-up
        runs = [timed(work) for _ in range(repeats)]
    for client in clients.values():
        client.close()
    statuses = [Counter(result["status"]) for _, _, result in runs]
    missing = [str(s) for s in EXPECTED if not statuses[0][s.value]]
    assert not missing and all(s == statuses[0] for s in statuses), f"statuses missing {missing}: {statuses[0]}"
    cpu = statistics.median(r[0] for r in runs)
    return {
        "machine": harness.machine(("ims-nb", "pandas", "numpy")),
        "regions": regions, "images": len(frame), "ledger_rows": ledger_rows, "objects": len(listed),
        "repeats": repeats, "setup_s": round(setup_s, 3), "cpu_s": [round(r[0], 4) for r in runs],
        "wall_s": [round(r[1], 4) for r in runs], "median_cpu_s": round(cpu, 4),
        "median_wall_s": round(statistics.median(r[1] for r in runs), 4), "goal_cpu_s": GOAL_CPU_S,
        "goal_met": cpu <= GOAL_CPU_S, "statuses": dict(statuses[0]),
    }  # fmt: skip


def report(results: dict[str, Any]) -> str:
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(results["statuses"].items()))
    return "\n".join([
        f"coverage of {results['regions']} regions x {results['images'] // results['regions']:,} images, "
        f"{results['ledger_rows']:,} ledger rows, {results['objects']:,} objects ({harness.machine_text(results)})",
        f"  statuses: {statuses}",
        f"  CPU  {results['median_cpu_s']:.3f} s (median of {results['repeats']}; goal <= {results['goal_cpu_s']:g} s: "
        f"{'met' if results['goal_met'] else 'NOT met'})",
        f"  wall {results['median_wall_s']:.3f} s   (inputs built in {results['setup_s']:.1f} s, untimed)",
    ])  # fmt: skip


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regions", type=int, default=10, help=f"regions, 1 to {len(REGIONS)} (default 10)")
    parser.add_argument("--images", type=int, default=2000, help="private images per region (default 2000)")
    parser.add_argument("--ledger-rows", type=int, default=5000, help="ledger rows in all (default 5000)")
    parser.add_argument("--objects", type=int, default=5000, help="bucket objects in all (default 5000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up (default 3)")


def check(args: argparse.Namespace) -> str | None:
    if not 1 <= args.regions <= len(REGIONS):
        return f"--regions must be 1 to {len(REGIONS)}"
    if min(args.images, args.ledger_rows, args.objects, args.repeats) < 1:
        return "--images, --ledger-rows, --objects and --repeats must be positive"
    if args.ledger_rows // args.regions > args.images:
        return "--ledger-rows per region must not exceed --images"
    return None


BENCH = harness.Bench(
    "coverage", __doc__,
    options, lambda a: run_benchmark(a.regions, a.images, a.ledger_rows, a.objects, a.repeats), report, check,
)  # fmt: skip

main = partial(harness.main, BENCH)  # main(argv) -> exit status


if __name__ == "__main__":
    harness.run_module(BENCH)
