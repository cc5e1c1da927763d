"""Preflight benchmark: the vectorised rule table against a straightforward per-row Python loop.

    python -m benchmarks.bench_preflight [--images 100000] [--repeats 5] [--output PATH]

The seeded inventory (``ims_nb.sim.inventory.build_inventory(0, N)``) gives N raw ImageInfo records; they are
framed once with ``ims_nb.frames.images_frame`` (timed and reported on its own). Then, after one warm-up run
of each, the repeats are interleaved (vectorised, loop, vectorised, loop, ...), the garbage of one run
collected before the next (untimed):

(v) ``preflight(frame, bucket_url=BUCKET_URL, file_format="qcow2")``: no client, so the default region
    profile and no bucket, object or running-export lookups.
(l) ``loop_preflight(records, ...)`` below: what a naive implementation would write. One function per rule;
    for each record dict, parse the fields it needs, call every rule, format the message and the fix of
    each rule that fires; one DataFrame of the violations at the end.

Both sides must find the same (image_id, rule) pairs, and the same severity, code, message and fix for
each, on every run, so neither side can look fast by doing less. The latest numbers go to
``benchmarks/results/preflight.json`` (not in git).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import pandas as pd

from benchmarks import harness
from benchmarks.bench_preflight.loop import Violation, loop_preflight
from ims_nb.frames import images_frame
from ims_nb.preflight import VIOLATION_COLUMNS, preflight
from ims_nb.sim.inventory import build_inventory

__all__ = ["BENCH", "BUCKET_URL", "agree", "build_inventory", "images_frame", "loop_preflight", "main", "preflight"]

BUCKET_URL = "ims-exports-cn-north-4:exports/{name}-{id8}.{ext}"
FILE_FORMAT = "qcow2"
PACKAGES = ("ims-nb", "pandas", "numpy")


# --- agreement: both sides must find the same violations ------------------------------------------


def rows_of(frame: pd.DataFrame) -> Counter[Violation]:
    """The violation rows as plain tuples (missing values as None), counted."""
    plain = frame[list(VIOLATION_COLUMNS)].astype(object)
    plain = plain.where(plain.notna(), None)
    return Counter(plain.itertuples(index=False, name=None))


def agree(vectorised: pd.DataFrame, loop: pd.DataFrame) -> dict[str, Any]:
    """Assert that both frames hold the same (image_id, rule) pairs and the same rows; return what was compared."""
    pairs_v = set(zip(vectorised["image_id"].astype(object), vectorised["rule"].astype(object), strict=True))
    pairs_l = set(zip(loop["image_id"].astype(object), loop["rule"].astype(object), strict=True))
    only_v, only_l = sorted(pairs_v - pairs_l), sorted(pairs_l - pairs_v)
    assert not only_v and not only_l, (
        f"(image_id, rule) pairs differ: {len(only_v)} only in preflight (e.g. {only_v[:3]}), "
        f"{len(only_l)} only in the loop (e.g. {only_l[:3]})"
    )
    assert len(pairs_v) == len(vectorised) and len(pairs_l) == len(loop), "a side reported a pair twice"
    rows_v, rows_l = rows_of(vectorised), rows_of(loop)
    if rows_v != rows_l:
        differ = sorted(set((rows_v - rows_l).keys()) ^ set((rows_l - rows_v).keys()), key=repr)
        raise AssertionError(f"same pairs, different severity, code, message or fix, e.g. {differ[:2]}")
    return {"checked": True, "pairs": len(pairs_v), "rows_equal": True}


# --- measuring ------------------------------------------------------------------------------------


def timed(run: Callable[[], pd.DataFrame]) -> tuple[float, pd.DataFrame]:
    """Seconds one run takes (``perf_counter``), after collecting the garbage of the last one."""
    gc.collect()
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def summary(times: Sequence[float], images: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "times_s": list(times),
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "us_per_image": median / images * 1e6,
    }


def run_benchmark(images: int, repeats: int) -> dict[str, Any]:
    """Build and frame the inventory, time both sides (interleaved), check they agree on every run."""
    records = build_inventory(0, images).images
    assert len(records) == images, f"the inventory holds {len(records)} images, not {images}"
    gc.collect()
    started = time.perf_counter()
    frame = images_frame(records)
    framing_s = time.perf_counter() - started

    options: dict[str, Any] = {"bucket_url": BUCKET_URL, "file_format": FILE_FORMAT}
    runs: dict[str, Callable[[], pd.DataFrame]] = {
        "vectorised": lambda: preflight(frame, **options),
        "loop": lambda: loop_preflight(records, **options),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    agreement: dict[str, Any] = {}
    for round_ in range(repeats + 1):  # round 0 is the warm-up
        results = {}
        for name, run in runs.items():
            elapsed, results[name] = timed(run)
            if round_:
                times[name].append(elapsed)
        agreement = agree(results["vectorised"], results["loop"])
    by_rule = results["vectorised"].groupby(["rule", "severity"]).size()
    variants = {name: summary(times[name], images) for name in runs}
    vectorised, loop = variants["vectorised"], variants["loop"]
    return {
        "benchmark": "preflight",
        "images": images,
        "repeats": repeats,
        "bucket_url": BUCKET_URL,
        "file_format": FILE_FORMAT,
        "framing_s": framing_s,
        "framing_us_per_image": framing_s / images * 1e6,
        "variants": variants,
        "ratio_loop_over_vectorised": loop["median_s"] / vectorised["median_s"],
        "ratio_of_minimums": loop["min_s"] / vectorised["min_s"],
        "ratio_loop_over_framing_plus_vectorised": loop["median_s"] / (framing_s + vectorised["median_s"]),
        "violations": len(results["vectorised"]),
        "violations_by_rule": {f"{rule} ({severity})": int(n) for (rule, severity), n in by_rule.items()},
        "agreement": agreement,
        "machine": harness.machine(PACKAGES),
    }


def report(results: dict[str, Any]) -> str:
    images = results["images"]
    lines = [
        f"Preflight over {images:,} images ({results['bucket_url']}, {results['file_format']}, no client), "
        f"{results['repeats']} interleaved repeats after one warm-up each; " + harness.machine_text(results),
        f"framing once (images_frame): {results['framing_s']:.3f} s = {results['framing_us_per_image']:.2f} µs/image",
        "",
        f"{'variant':<44} {'median s':>9} {'min s':>8} {'max s':>8} {'µs/image':>9}",
    ]
    labels = {"vectorised": "preflight(frame, ...) (vectorised)", "loop": "per-row Python loop over the records"}
    for name, label in labels.items():
        s = results["variants"][name]
        lines.append(
            f"{label:<44} {s['median_s']:>9.3f} {s['min_s']:>8.3f} {s['max_s']:>8.3f} {s['us_per_image']:>9.2f}"
        )
    lines += [
        "",
        f"ratio loop / vectorised: {results['ratio_loop_over_vectorised']:.2f} (medians), "
        f"{results['ratio_of_minimums']:.2f} (minimums); "
        f"loop / (framing + vectorised): {results['ratio_loop_over_framing_plus_vectorised']:.2f}",
        f"agreement: {results['agreement']['pairs']:,} (image_id, rule) pairs, identical rows on every run",
    ]
    return "\n".join(lines)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=int, default=100_000, help="images in the inventory (default 100000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each side (default 5)")


def check(args: argparse.Namespace) -> str | None:
    return "--repeats must be at least 1" if args.repeats < 1 else None


BENCH = harness.Bench(
    "preflight", __doc__, options, lambda args: run_benchmark(args.images, args.repeats), report, check
)

main = partial(harness.main, BENCH)  # main(argv) -> exit status
