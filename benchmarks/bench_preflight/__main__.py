"""``python -m benchmarks.bench_preflight``: run the preflight benchmark."""

from __future__ import annotations

from benchmarks import harness
from benchmarks.bench_preflight import BENCH

harness.run_module(BENCH)
