"""The import benchmark still runs end to end with one run (its numbers are not judged here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "bench_import.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_import", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_one_run_reports_every_variant_the_ratio_and_the_top_modules(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "import.json"
    assert bench.main(["--runs", "1", "--warmups", "0", "--output", str(output)]) == 0

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
    top = results["importtime_top"]
    assert len(top) == 5 and all(row["self_us"] >= 0 and row["module"] for row in top)
    assert [row["self_us"] for row in top] == sorted((row["self_us"] for row in top), reverse=True)
    printed = capsys.readouterr().out
    assert "ims_nb/baseline" in printed and "importtime" in printed


def test_a_missing_module_is_reported_only_where_it_may_be_missing(bench: ModuleType) -> None:
    optional = bench.Variant("optional", (), ("ims_nb_no_such_module",), required=False)
    assert bench.import_seconds(optional) is None
    required = bench.Variant("required", (), ("ims_nb_no_such_module",))
    with pytest.raises(RuntimeError, match="missing ims_nb_no_such_module"):
        bench.import_seconds(required)
