"""The estate benchmark still runs end to end on a tiny estate (its numbers are not judged here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from benchmarks import bench_estate


def test_a_tiny_estate_lists_every_image_with_each_variant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "estate.json"
    argv = ["--regions", "2", "--images", "50", "--latency", "0.01", "--repeats", "1", "--output", str(output)]
    assert bench_estate.main(argv) == 0

    results = json.loads(output.read_text())
    assert results["benchmark"] == "estate" and results["regions"] == 2 and results["latency_s"] == 0.01
    assert results["projects"] == 3  # two regions and the first region's sub-project
    assert results["images"] > 2 * 50
    assert set(results["variants"]) == set(bench_estate.VARIANTS)
    for variant in results["variants"].values():
        assert len(variant["times_s"]) == 1 and variant["median_s"] > 0 and variant["median_cpu_s"] >= 0
    assert set(results["ratios"]) == {"c/a", "c/b", "d/b"}
    assert results["ratios"]["c/a"]["target_max"] == 0.2 and results["ratios"]["c/b"]["target_max"] == 1.3
    printed = capsys.readouterr().out
    assert "(c) connect_estate" in printed and "c/b" in printed


def test_a_variant_that_misses_images_fails_the_run() -> None:
    with pytest.raises(AssertionError, match="got 99 images, not 100"):
        bench_estate.timed("c", lambda: (99, 0.1), 100)


def test_the_regions_are_the_client_table_s() -> None:
    from ims_nb.client import config

    chosen = bench_estate.regions(10)
    assert len(set(chosen)) == 10 and set(chosen) <= set(config.REGIONS)
    assert "--regions" in (bench_estate.check(argparse.Namespace(regions=0, repeats=1, latency=0.1)) or "")
