"""The import benchmark still runs end to end with one run (its numbers are not judged here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_import


def test_one_run_reports_every_variant_the_ratio_and_the_top_modules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "import.json"
    assert bench_import.main(["--runs", "1", "--warmups", "0", "--output", str(output)]) == 0

    results = json.loads(output.read_text())
    assert results["benchmark"] == "import" and results["runs"] == 1
    assert set(results["variants"]) == {"baseline", "ims_nb", "charts", "widgets"}
    for key in ("baseline", "ims_nb"):
        variant = results["variants"][key]
        assert not variant["missing"] and len(variant["times_s"]) == 1 and variant["median_s"] > 0
    assert results["variants"]["baseline"]["statement"] == "import httpx, pandas"
    assert results["variants"]["ims_nb"]["statement"] == "import ims_nb"
    for key in ("charts", "widgets"):
        variant = results["variants"][key]
        assert variant["setup"] == ["ims_nb"]
        assert variant["missing"] or (len(variant["times_s"]) == 1 and variant["median_s"] > 0)
        assert results["extra_median_s"][key] == variant["median_s"]
    assert results["ratio"]["name"] == "ims_nb/baseline" and results["ratio"]["value"] > 0
    cli = results["cli"]
    assert {s["command"] for s in cli["commands"].values()} == {'python -c "import httpx"', "ims-nb --help"}
    assert cli["ratio"]["target_max"] == 1.2 and cli["ratio"]["value"] > 0
    top = results["importtime_top"]
    assert len(top) == 5 and all(row["self_us"] >= 0 and row["module"] for row in top)
    assert [row["self_us"] for row in top] == sorted((row["self_us"] for row in top), reverse=True)
    printed = capsys.readouterr().out
    assert "ims_nb/baseline" in printed and "ims-nb --help / import httpx" in printed and "importtime" in printed


def test_a_missing_module_is_reported_only_where_it_may_be_missing() -> None:
    optional = bench_import.Variant("optional", (), ("ims_nb_no_such_module",), required=False)
    assert bench_import.import_seconds(optional) is None
    required = bench_import.Variant("required", (), ("ims_nb_no_such_module",))
    with pytest.raises(RuntimeError, match="missing ims_nb_no_such_module"):
        bench_import.import_seconds(required)
