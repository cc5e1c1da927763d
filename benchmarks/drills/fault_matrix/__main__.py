"""``python -m benchmarks.drills.fault_matrix``: run the fault matrix."""

from __future__ import annotations

from benchmarks import harness
from benchmarks.drills.fault_matrix import BENCH

harness.run_module(BENCH)
