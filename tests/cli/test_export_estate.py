"""``ims-nb export --regions`` and ``ims-nb jobs --regions``: a batch over three regions, each image exported once at
its own region's Standard bucket (the simulator's record per region), planned, launched, watched and listed."""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from ims_nb.sim import Simulator
from tests.cli.conftest import ESTATE_REGIONS
from tests.cli.helpers import run_main

BUCKET_URL = "ims-exports-{region}:{prefix}/{{project}}/{{name}}-{{id8}}.{{ext}}"
SELECTION = ["--imagetype", "private", "--status", "active", "--format", "qcow2"]
FINAL = {"verified", "failed"}


@pytest.fixture()
def env(bare_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, estate_sim_line: str) -> Path:
    """The estate simulator as $IMS_NB_SIM; the test's ledger (the simulators' one too); its path."""
    path = tmp_path / "ledger.sqlite"
    monkeypatch.setenv("IMS_NB_SIM", estate_sim_line)
    monkeypatch.setenv("IMS_NB_LEDGER", str(path))
    monkeypatch.setenv("IMS_NB_SIM_LEDGER", str(path))
    monkeypatch.setenv("COLUMNS", "250")
    return path


def _bucket_url(prefix: str) -> str:
    return BUCKET_URL.format(region="{region}", prefix=prefix)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _jobs_per_image(sim: Simulator, prefix: str) -> dict[str, Counter[str]]:
    """Per region, the export jobs its simulator recorded under ``prefix``, counted per image."""
    assert sim.info.regions is not None
    found: dict[str, Counter[str]] = {}
    for region, where in sim.info.regions.items():
        jobs: list[dict[str, Any]] = httpx.get(f"{where['endpoint']}/_sim/state").json()["jobs"]
        mine = [j for j in jobs if j["bucket_url"].split(":", 1)[1].startswith(f"{prefix}/")]
        assert all(j["bucket_url"].startswith(f"ims-exports-{region}:") for j in mine)  # never another region's
        found[region] = Counter(j["entities"]["image_id"] for j in mine)
    return found


def _exportable(plan: pd.DataFrame) -> dict[str, set[str]]:
    chosen = plan[plan["exportable"].astype(bool)]
    return {region: set(chosen.loc[chosen["region"] == region, "image_id"]) for region in ESTATE_REGIONS}


def test_dry_run_plans_every_region_and_sends_nothing(
    estate_sim: Simulator, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = tmp_path / "plan.csv"
    argv = ["export", "--regions", "all", *SELECTION, "--bucket-url", _bucket_url("dry"), "--dry-run",
            "--output-format", "csv", "-o", str(plan_file)]  # fmt: skip
    code, _, err = _run(argv, capsys)
    plan = pd.read_csv(plan_file)
    assert code in (0, 3) and "nothing was sent (--dry-run)" in err
    assert list(plan.columns[:3]) == ["region", "project_id", "project_name"]
    assert set(plan["region"]) == set(ESTATE_REGIONS) and all(_exportable(plan).values())
    assert not any(_jobs_per_image(estate_sim, "dry").values())


def test_a_plan_launched_and_watched_exports_each_image_once_in_its_own_region(
    estate_sim: Simulator, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = tmp_path / "plan.csv"
    argv = ["export", "--regions", "all", *SELECTION, "--bucket-url", _bucket_url("batch"), "--dry-run",
            "--output-format", "csv", "-o", str(plan_file)]  # fmt: skip
    _run(argv, capsys)
    plan = pd.read_csv(plan_file)
    plan[plan["exportable"].astype(bool)].to_csv(plan_file, index=False)  # the exportable rows, as a user keeps them
    code, out, err = _run(["export", "--regions", "all", "--plan", str(plan_file), "--watch", "--output-format", "csv"],
                          capsys)  # fmt: skip
    report = pd.read_csv(io.StringIO(out))
    assert code in (0, 1), err  # 1 only when a simulated job failed
    assert set(report["action"]) == {"launched"} and set(report["region"]) == set(ESTATE_REGIONS)
    assert "launched exports: " in err
    per_region = _jobs_per_image(estate_sim, "batch")
    assert {region: set(counts) for region, counts in per_region.items()} == _exportable(plan)
    assert all(set(counts.values()) == {1} for counts in per_region.values())
    code, _, err = _run(["export", "--regions", "all", "--plan", str(plan_file)], capsys)  # again: nothing new
    assert code == 0 and " 0 launched" in err and _jobs_per_image(estate_sim, "batch") == per_region


def test_jobs_lists_every_regions_rows_with_a_region_column(
    estate_sim: Simulator, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["export", "--regions", "all", *SELECTION, "--bucket-url", _bucket_url("jobs"), "--max-items", "4",
            "--output-format", "csv"]  # fmt: skip
    code, out, err = _run(argv, capsys)
    report = pd.read_csv(io.StringIO(out))
    launched = report[report["action"] == "launched"]
    assert code in (0, 3) and len(set(launched["region"])) >= 2, err
    code, out, err = _run(["jobs", "--regions", "all", "--watch", "--output-format", "csv"], capsys)
    frame = pd.read_csv(io.StringIO(out))
    assert code == 0, err
    assert list(frame.columns[:3]) == ["region", "project_id", "project_name"]
    assert Counter(frame["region"]) == Counter(launched["region"]) and set(frame["state"]) <= FINAL
    region = str(launched["region"].iloc[-1])
    code, out, _ = _run(["jobs", "--regions", region], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:2] == ["REGION", "PROJECT"]
    assert {line.split()[0] for line in lines[1:]} == {region}


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["export", "--regions", "all", "--endpoint", "http://x", *SELECTION, "--bucket", "b"], "leave out --region"),
        (["export", "--projects", "cn-north-4_dev", *SELECTION, "--bucket", "b"], "give --regions too"),
        (["export", "--regions", "all", *SELECTION, "--bucket", "b", "--bucket-url", "b:k"], "--bucket-url is"),
        (["jobs", "--regions", "all", "--region", "cn-north-4"], "leave out --region"),
        (["jobs", "--projects", "cn-north-4_dev"], "give --regions too"),
    ],
)
def test_bad_combinations_exit_2_naming_the_fix(
    env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    code, _, err = _run(argv, capsys)
    assert code == 2 and words in err, err
    assert os.environ["IMS_NB_SIM"]  # the simulator was there: the options were refused, not the connection
