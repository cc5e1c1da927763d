"""The coverage benchmark still runs end to end on a small estate (its numbers are not judged here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_coverage


def test_a_small_run_reaches_every_status_and_reports_cpu_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "coverage.json"
    argv = ["--regions", "2", "--images", "150", "--ledger-rows", "100", "--objects", "100", "--repeats", "1"]
    assert bench_coverage.main([*argv, "--output", str(output)]) == 0

    results = json.loads(output.read_text())
    assert results["images"] == 300 and results["objects"] == 100 and len(results["cpu_s"]) == 1
    assert results["median_cpu_s"] > 0 and results["goal_cpu_s"] == bench_coverage.GOAL_CPU_S
    assert set(results["statuses"]) >= {str(s) for s in bench_coverage.EXPECTED}
    assert "CPU" in capsys.readouterr().out


def test_impossible_sizes_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_coverage.main(["--regions", "2", "--images", "10", "--ledger-rows", "100"])
    assert "--ledger-rows" in capsys.readouterr().err
