"""Watch benchmark: 1,000 concurrent export jobs followed to their end by ``watch`` on a fast simulated clock.

    python -m benchmarks.bench_watch [--jobs 1000] [--images 1800] [--time-scale 60] [--interval 5]
                                     [--max-interval 60] [--max-rate 5] [--output PATH]

One embedded simulator (seed 0, ``--images`` images, ``--time-scale`` simulated seconds per real second) holds
the world. The plan is ``plan_exports(client.images(), bucket=BUCKET, key_template=KEY_TEMPLATE, client=client,
profile=SIMULATOR_PROFILE)`` and its first ``--jobs`` exportable rows are launched (``launch`` with
``LAUNCH_CONCURRENCY`` threads, a rate that never binds; timed apart), then followed by ``watch(ledger, ...)``
until every job is final. ``--interval``, ``--max-interval`` and ``--max-rate`` are given in *simulated* time
(the defaults are ``watch``'s own: 5 s, 60 s, 5 requests/s); ``watch`` runs on real time, so it gets them
divided (the intervals) or multiplied (the rate) by the time scale. A batch then costs the requests it would
cost against the real service with those settings, provided the machine keeps up with the scaled rate (the
achieved rate is reported).

A counting ``httpx`` transport under the client sorts every request: job polls, object HEADs (verification),
export POSTs, others. Each job's final state is checked against the simulator's own plan of the job (a FAIL is
``failed``, a SUCCESS ``verified``), so no job can be miscounted.

Baseline, in the same run: a fresh simulator (same seed, so the same world), the same rows launched again, and
``client.wait(job_ids)`` with a fixed interval (``max_interval == interval``) and the same rate cap: no
per-job backoff, no ledger, no verification.

The latest numbers go to ``benchmarks/results/watch.json`` (not in git).
"""

from __future__ import annotations

import argparse
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.bench_watch.batch import BUCKET, KEY_TEMPLATE, LAUNCH_CONCURRENCY, waited, watched
from benchmarks.bench_watch.counting import CountingTransport
from benchmarks.bench_watch.report import report

__all__ = ["BENCH", "CountingTransport", "main", "run_benchmark"]

PACKAGES = ("ims-nb", "httpx", "pandas", "uvicorn")


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    scale = args.time_scale
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as folder:
        watch_run = watched(args, Path(folder))
        baseline = waited(args, Path(folder))
    per_hour = {
        name: run[phase]["requests"]["poll"] / (run["planned_durations_sim"]["sum_s"] / 3600)
        for name, run, phase in (("watch", watch_run, "watch"), ("baseline", baseline, "wait"))
    }
    return {
        "benchmark": "watch",
        "jobs": args.jobs,
        "images": args.images,
        "bucket": BUCKET,
        "key_template": KEY_TEMPLATE,
        "time_scale": scale,
        "settings_sim": {
            "interval_s": args.interval,
            "max_interval_s": args.max_interval,
            "max_rate_per_s": args.max_rate,
        },  # fmt: skip
        "settings_real": {
            "interval_s": args.interval / scale,
            "max_interval_s": args.max_interval / scale,
            "max_rate_per_s": args.max_rate * scale,
        },  # fmt: skip
        "launch_concurrency": LAUNCH_CONCURRENCY,
        "watch": watch_run,
        "baseline": baseline,
        "polls_per_job_hour": per_hour,
        "ratio_polls_watch_over_baseline": watch_run["watch"]["per_job"]["poll"] / baseline["wait"]["per_job"]["poll"],
        "machine": harness.machine(PACKAGES),
    }


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=1000, help="concurrent export jobs (default 1000)")
    parser.add_argument("--images", type=int, default=1800, help="images in the simulator (default 1800)")
    parser.add_argument("--time-scale", type=float, default=60.0, help="simulated s per real s (default 60)")
    harness.polling_options(parser)
    parser.add_argument("--timeout", type=float, default=900.0, help="real s each watch may take (default 900)")


def check(args: argparse.Namespace) -> str | None:
    if args.jobs < 1 or args.time_scale <= 0 or not 0 < args.interval <= args.max_interval or args.max_rate <= 0:
        return "need --jobs >= 1, --time-scale > 0, 0 < --interval <= --max-interval, --max-rate > 0"
    return None


BENCH = harness.Bench("watch", __doc__, options, run_benchmark, report, check)

main = partial(harness.main, BENCH)  # main(argv) -> exit status
