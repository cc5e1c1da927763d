"""``ims-nb coverage``: the table and its formats, exit 4 while an exportable image is uncovered, and 0 once
``--export-gap --yes --watch`` has exported the gap; bad arguments exit 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from ims_nb.cli.coverage import EXIT_UNCOVERED
from ims_nb.coverage import COVERAGE_COLUMNS
from ims_nb.vocab import Coverage
from tests.cli.helpers import run_cli, run_main
from tests.helpers import BUCKET, cli_simulator

GAP_URL = f"{BUCKET}:coverage/{{name}}-{{id8}}.{{ext}}"


@pytest.fixture(scope="module")
def sim_line() -> Iterator[str]:
    """``ims-nb sim --time-scale 100000``: an export job ends within a fraction of a second."""
    with cli_simulator("--time-scale", "100000") as line:
        yield line


def _jobs(info: dict[str, str]) -> int:
    return len(httpx.get(f"{info['endpoint']}/_sim/state").json()["jobs"])


def _coverage(sim_line: str, ledger: Path, *options: str) -> int:
    return run_main(["coverage", "--sim", sim_line, "--ledger", str(ledger), "--max-items", "12", *options])


def test_a_gap_exits_4_until_export_gap_and_the_watch_close_it(
    sim_line: str, sim_info: dict[str, str], bare_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    assert _coverage(sim_line, ledger, "--format", "json") == EXIT_UNCOVERED
    out, err = capsys.readouterr()
    records = json.loads(out)
    assert list(records[0]) == ["id", "name", *COVERAGE_COLUMNS] and len(records) == 12
    statuses = {r["status"] for r in records}
    assert Coverage.NEVER in statuses and Coverage.NOT_EXPORTABLE in statuses
    assert records[0]["status"] == Coverage.NEVER  # the uncovered first
    assert "12 images: " in err and "never" in err

    assert _coverage(sim_line, ledger, "--export-gap", "--bucket-url", GAP_URL) == EXIT_UNCOVERED
    assert "nothing was sent" in capsys.readouterr().err
    assert _jobs(sim_info) == 0

    never = sum(r["status"] == Coverage.NEVER for r in records)
    code = _coverage(sim_line, ledger, "--export-gap", "--bucket-url", GAP_URL, "--yes", "--watch", "--format", "csv")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{never} launched" in err and _jobs(sim_info) == never
    after = pd.read_csv(pd.io.common.StringIO(out))
    assert set(after["status"]) == {Coverage.COVERED, Coverage.NOT_EXPORTABLE}
    assert after.loc[after["status"] == Coverage.COVERED, "target"].str.startswith(f"{BUCKET}:coverage/").all()

    assert _coverage(sim_line, ledger) == 0  # the table, nothing uncovered
    out, _ = capsys.readouterr()
    assert out.splitlines()[0].split()[:3] == ["ID", "NAME", "STATUS"]


def test_parquet_writes_the_frame(
    sim_line: str, bare_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyarrow")
    target = tmp_path / "coverage.parquet"
    assert _coverage(sim_line, tmp_path / "l.sqlite", "--format", "parquet", "-o", str(target)) in (0, EXIT_UNCOVERED)
    frame = pd.read_parquet(target)
    assert list(frame.columns) == ["id", "name", *COVERAGE_COLUMNS] and len(frame) == 12


@pytest.mark.parametrize(
    "options",
    [["--yes"], ["--export-gap"], ["--export-gap", "--bucket-url", GAP_URL, "--watch"], ["--format", "parquet"],
     ["--export-gap", "--bucket-url", f"{BUCKET}:{{nope}}.{{ext}}"], ["--export-gap", "--bucket-url", "no-key"]],
)  # fmt: skip
def test_bad_arguments_exit_2(
    sim_line: str, bare_env: Any, tmp_path: Path, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _coverage(sim_line, tmp_path / "l.sqlite", *options) == 2
    assert "error" in capsys.readouterr().err


def test_the_verb_runs_as_a_process_and_has_help(bare_env: dict[str, str]) -> None:
    done = run_cli(["coverage", "--help"], bare_env)
    assert done.returncode == 0 and "--export-gap" in done.stdout and "Exit codes" in done.stdout
