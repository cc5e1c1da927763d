"""``ims-nb images --regions/--projects``: the estate's frame, with the region columns, in every format."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from ims_nb.sim import Simulator
from tests.cli.helpers import run_main

REGIONS = ("cn-north-4", "ap-southeast-1")


@pytest.fixture(scope="module")
def estate_line() -> Iterator[str]:
    with Simulator(regions=REGIONS, seed=0, images=30, manual_clock=True) as simulator:
        yield json.dumps(simulator.info.line())


def _images(argv: list[str]) -> int:
    return run_main(["images", *argv])


def test_csv_of_every_region_and_project(estate_line: str, bare_env: dict[str, str],
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert _images(["--regions", "all", "--sim", estate_line, "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns[:3]) == ["region", "project_id", "project_name"]
    assert set(frame["region"]) == set(REGIONS) and "cn-north-4_dev" in set(frame["project_name"])
    assert "SIMULATOR" in err and json.loads(estate_line)["sk"] not in out + err


def test_projects_choose_and_the_table_shows_where(estate_line: str, bare_env: dict[str, str],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("IMS_NB_SIM", estate_line)
    monkeypatch.setenv("COLUMNS", "200")
    assert _images(["--regions", "cn-north-4,ap-southeast-1", "--projects", "cn-north-4_dev"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["REGION", "PROJECT"]
    assert {line.split()[1] for line in lines[1:]} == {"cn-north-4_dev"}
    assert _images(["--regions", "ap-southeast-1", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["region"] for r in records} == {"ap-southeast-1"}


def test_a_failing_region_is_a_warning_line(estate_line: str, bare_env: dict[str, str],
                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    info = json.loads(estate_line)
    fault = {"kind": "response", "status": 400, "count": None, "region": "ap-southeast-1",
             "body": '{"error_code": "IMG.0001", "error_msg": "region not enabled"}'}  # fmt: skip
    httpx.post(f"{info['endpoint']}/_sim/faults", json=fault).raise_for_status()
    try:
        assert _images(["--regions", "all", "--sim", estate_line, "--format", "csv"]) == 0
    finally:
        httpx.request("DELETE", f"{info['endpoint']}/_sim/faults", json={"region": "ap-southeast-1"})
    out, err = capsys.readouterr()
    assert set(pd.read_csv(io.StringIO(out))["region"]) == {"cn-north-4"}
    assert "warning" in err and "ap-southeast-1" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--projects", "cn-north-4_dev"], "--regions"),
        (["--regions", "all", "--region", "cn-north-4"], "--region"),
        (["--regions", "eu-west-0"], "eu-west-0"),
    ],
)
def test_bad_estate_arguments_exit_2(estate_line: str, bare_env: dict[str, str], capsys: pytest.CaptureFixture[str],
                                     argv: list[str], words: str) -> None:  # fmt: skip
    assert _images([*argv, "--sim", estate_line]) == 2
    assert words in capsys.readouterr().err
