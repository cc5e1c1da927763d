"""The preflight benchmark still runs end to end on a small inventory (its numbers are not judged here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_preflight


def test_a_small_run_checks_that_both_sides_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "preflight.json"
    assert bench_preflight.main(["--images", "2000", "--repeats", "1", "--output", str(output)]) == 0

    results = json.loads(output.read_text())
    assert results["images"] == 2000
    assert results["agreement"] == {"checked": True, "pairs": results["violations"], "rows_equal": True}
    assert results["violations"] > 0
    for variant in results["variants"].values():
        assert len(variant["times_s"]) == 1 and variant["us_per_image"] > 0
    assert results["ratio_loop_over_vectorised"] > 0
    assert "ratio loop / vectorised" in capsys.readouterr().out


def test_a_side_that_misses_or_changes_a_violation_fails_the_run() -> None:
    records = bench_preflight.build_inventory(0, 100).images
    options = {"bucket_url": bench_preflight.BUCKET_URL, "file_format": "qcow2"}
    vectorised = bench_preflight.preflight(bench_preflight.images_frame(records), **options)
    loop = bench_preflight.loop_preflight(records, **options)
    assert bench_preflight.agree(vectorised, loop)["pairs"] == len(loop) > 0

    with pytest.raises(AssertionError, match=r"pairs differ: 0 only in preflight .*, 1 only in the loop"):
        bench_preflight.agree(vectorised.iloc[1:], loop)
    changed = loop.copy()
    changed.loc[0, "message"] = "something else"
    with pytest.raises(AssertionError, match="different severity, code, message or fix"):
        bench_preflight.agree(vectorised, changed)
