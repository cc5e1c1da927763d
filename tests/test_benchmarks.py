"""The listing benchmark still runs end to end on a small world (its numbers are not judged here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_listing


def test_a_small_run_lists_every_image_with_each_variant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "listing.json"
    assert bench_listing.main(["--images", "300", "--repeats", "1", "--output", str(output)]) == 0

    results = json.loads(output.read_text())
    assert results["images"] == 300
    assert set(results["variants"]) == {"a", "b", "c", "d"}
    for variant in results["variants"].values():
        assert len(variant["times_s"]) == 1 and variant["median_s"] > 0
    assert set(results["ratios"]) == {"c/a", "c/b", "d/b"}
    printed = capsys.readouterr().out
    assert "(a) official SDK" in printed and "c/b" in printed


def test_a_variant_that_misses_images_fails_the_run() -> None:
    with pytest.raises(AssertionError, match="got 299 images, not 300"):
        bench_listing.timed("c", lambda: 299, 300)
