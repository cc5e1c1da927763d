"""``ims-nb coverage --regions``: every region and project judged at once; exit 4 while a gap remains, 0 once
``--export-gap --yes --watch`` has exported it, each image to its own region's bucket."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from ims_nb.cli.coverage import EXIT_UNCOVERED
from ims_nb.sim import Simulator
from ims_nb.vocab import Coverage
from tests.cli.helpers import run_main

REGIONS = ("cn-north-4", "ap-southeast-1", "ap-southeast-3")
GAP_URL = "ims-exports-{region}:{project}/{name}-{id8}.{ext}"


@pytest.fixture(scope="module")
def estate() -> Iterator[Simulator]:
    """Three regions and a sub-project; an export job ends within a fraction of a second."""
    with Simulator(regions=REGIONS, seed=0, images=20, time_scale=100000) as simulator:
        yield simulator


def _coverage(estate: Simulator, ledger: Path, *options: str) -> int:
    line = json.dumps(estate.info.line())
    return run_main(["coverage", "--regions", "all", "--sim", line, "--ledger", str(ledger), "--max-items", "4",
                     "--bucket", "ims-exports-{region}", *options])  # fmt: skip


def _jobs(estate: Simulator) -> dict[str, list[dict[str, Any]]]:
    assert estate.info.regions is not None
    return {region: httpx.get(f"{where['endpoint']}/_sim/state").json()["jobs"]
            for region, where in estate.info.regions.items()}  # fmt: skip


def test_a_gap_over_the_estate_exits_4_until_exported_and_watched(
    estate: Simulator, bare_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    assert _coverage(estate, ledger, "--format", "csv") == EXIT_UNCOVERED
    out, err = capsys.readouterr()
    before = pd.read_csv(io.StringIO(out))
    assert list(before.columns[:5]) == ["id", "name", "region", "project_id", "project_name"]
    assert set(before["region"]) == set(REGIONS) and "cn-north-4_dev" in set(before["project_name"])
    assert Coverage.NEVER in set(before["status"]) and estate.info.sk not in out + err

    never = before[before["status"] == Coverage.NEVER]
    code = _coverage(estate, ledger, "--export-gap", "--bucket-url", GAP_URL, "--yes", "--watch", "--format", "csv")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{len(never)} launched" in err
    after = pd.read_csv(io.StringIO(out)).set_index("id")
    assert set(after["status"]) <= {Coverage.COVERED, Coverage.NOT_EXPORTABLE}
    jobs = _jobs(estate)
    for region in REGIONS:
        sent = [j["entities"]["image_id"] for j in jobs[region]]
        assert sorted(sent) == sorted(never.loc[never["region"] == region, "id"])  # once each, in its own region
        assert all(j["bucket_url"].startswith(f"ims-exports-{region}:") for j in jobs[region])
    assert (
        after.loc[never["id"], "target"].str.split(":").str[0] == "ims-exports-" + never.set_index("id")["region"]
    ).all()

    assert _coverage(estate, ledger) == 0  # the table, nothing uncovered
    out, _ = capsys.readouterr()
    assert out.splitlines()[0].split()[:2] == ["REGION", "PROJECT"] and "cn-north-4_dev" in out


def test_projects_need_regions(estate: Simulator, bare_env: Any, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    line = json.dumps(estate.info.line())
    code = run_main(["coverage", "--sim", line, "--ledger", str(tmp_path / "l.sqlite"), "--projects", "x"])
    assert code == 2 and "--regions" in capsys.readouterr().err
