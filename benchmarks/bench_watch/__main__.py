"""``python -m benchmarks.bench_watch``: run the watch benchmark."""

from __future__ import annotations

from benchmarks import harness
from benchmarks.bench_watch import BENCH

harness.run_module(BENCH)
