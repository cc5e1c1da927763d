"""The estate benchmark still runs end to end on a tiny estate (its numbers are not judged here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
import pytest

from benchmarks import bench_estate


@pytest.mark.parametrize(
    ("flags", "where"), [([], bench_estate.PER_REGION), (["--in-process"], bench_estate.IN_PROCESS)]
)
def test_a_tiny_estate_lists_every_image_with_each_variant(
    flags: list[str], where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "estate.json"
    argv = ["--regions", "2", "--images", "50", "--latency", "0.01", "--repeats", "1", "--output", str(output)]
    assert bench_estate.main([*argv, *flags]) == 0

    results = json.loads(output.read_text())
    assert results["benchmark"] == "estate" and results["regions"] == 2 and results["latency_s"] == 0.01
    assert results["simulator"] == where
    assert results["projects"] == 3  # two regions and the first region's sub-project
    assert results["images"] > 2 * 50
    assert set(results["variants"]) == set(bench_estate.VARIANTS)
    for variant in results["variants"].values():
        assert len(variant["times_s"]) == 1 and variant["median_s"] > 0 and variant["median_cpu_s"] >= 0
    assert set(results["ratios"]) == {"c/a", "c/b", "d/b", "e/b", "f/b"}
    assert results["ratios"]["f/b"]["target_max"] is None
    assert results["ratios"]["c/a"]["target_max"] == 0.2 and results["ratios"]["c/b"]["target_max"] == 1.3
    printed = capsys.readouterr().out
    assert "(c) connect_estate" in printed and "c/b" in printed


@pytest.mark.parametrize("compact", [True, False])
def test_the_transfer_floor_reads_what_decoding_gives(compact: bool) -> None:
    records = [{"id": f"id-{n}", "name": f"image {n}", "tags": ["a=b"], "size": n} for n in range(3)]
    body = json.dumps({"images": records}, separators=(",", ":") if compact else None).encode()
    assert bench_estate.undecoded(body) == bench_estate.decoded(body) == (3, "id-2")
    empty = json.dumps({"images": []}).encode()
    assert bench_estate.undecoded(empty) == bench_estate.decoded(empty) == (0, None)


def test_a_variant_that_misses_images_fails_the_run() -> None:
    with pytest.raises(AssertionError, match="got 99 images, not 100"):
        bench_estate.timed("c", lambda: (99, 0.1), 100)


def test_the_regions_are_the_client_table_s() -> None:
    from ims_nb.client import config

    chosen = bench_estate.regions(10)
    assert len(set(chosen)) == 10 and set(chosen) <= set(config.REGIONS)
    assert "--regions" in (bench_estate.check(argparse.Namespace(regions=0, repeats=1, latency=0.1)) or "")


def test_the_child_simulators_serve_each_region_and_stop_even_when_the_run_fails() -> None:
    endpoints: dict[str, str] = {}
    with (  # noqa: PT012 - the failure is inside the block
        pytest.raises(RuntimeError, match="the run failed"),
        bench_estate.served_by_children(bench_estate.regions(2), 5) as (info, every),
    ):
        endpoints = bench_estate._endpoints(info)
        assert len(set(endpoints.values())) == 2 and {s.endpoint for s in every} == set(endpoints.values())
        assert all(s.images > 0 for s in every)
        raise RuntimeError("the run failed")
    assert endpoints
    for endpoint in endpoints.values():
        with pytest.raises(httpx.TransportError):
            httpx.get(endpoint + bench_estate.LATENCY_PATH, timeout=2)
