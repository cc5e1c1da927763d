"""Point 8 of issue 12 through the CLI: exports started with ``ims-nb export --sim LINE``, then ``ims-nb jobs
--watch`` without credentials (a fresh embedded simulator) and with another simulator's line: every row unchanged,
the real default ledger never written, and the output says whose the rows are."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ims_nb
from ims_nb.exports.identity import ELSEWHERE
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.plan import plan_exports
from ims_nb.rules import SIMULATOR_PROFILE
from tests.cli.helpers import run_cli
from tests.helpers import cli_simulator

BUCKET = "ims-exports-cn-north-4"


@pytest.fixture(scope="module")
def lines() -> Iterator[tuple[str, str]]:
    """Two `ims-nb sim --manual-clock` (jobs stay live): the same seed, project and keys; other endpoints."""
    with cli_simulator("--manual-clock") as first, cli_simulator("--manual-clock") as second:
        yield first, second


@pytest.fixture(scope="module")
def image_ids(lines: tuple[str, str]) -> list[str]:
    info = json.loads(lines[0])
    with ims_nb.connect(ak=info["ak"], sk=info["sk"], project_id=info["project_id"], endpoint=info["endpoint"]) as c:
        plan = plan_exports(c.images(imagetype="private"), bucket=BUCKET, quick=False, profile=SIMULATOR_PROFILE)
    ids = plan.loc[plan["exportable"].fillna(False).astype(bool), "image_id"].tolist()
    assert len(ids) >= 6
    return [str(i) for i in ids[:6]]


@pytest.fixture()
def env(bare_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A shell without credentials (``bare_env``): the real default ledger and temporary files in tmp_path."""
    monkeypatch.setenv("IMS_NB_LEDGER", str(tmp_path / "real.sqlite"))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return dict(os.environ)


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(argv, env)


def _rows(path: Path) -> list[dict[str, Any]]:
    with Ledger(path) as ledger:
        return ledger.rows()


def _export(ids: list[str], line: str, env: dict[str, str], *more: str) -> None:
    result = _run(["export", *ids, "--bucket", BUCKET, "--format", "qcow2", "--sim", line, *more], env)
    assert result.returncode == 0, result.stderr


def test_a_simulators_exports_never_reach_the_real_ledger_and_no_other_watch_touches_them(
    lines: tuple[str, str], image_ids: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    first, second = lines
    _export(image_ids[:3], first, env)
    port = json.loads(first)["endpoint"].rsplit(":", 1)[1]
    own = tmp_path / f"ims-nb-sim-{port}.sqlite"  # the simulator's own ledger, shared by the processes using it
    before = _rows(own)
    assert len(before) == 3 and {r["endpoint"] for r in before} == {json.loads(first)["endpoint"]}
    for watch_from in ([], ["--sim", second]):
        result = _run(["jobs", "--watch", "--timeout", "60", *watch_from], env)
        assert result.returncode == 0, result.stderr
        assert "no ledger at" in result.stderr  # its own ledger: nothing was exported with that simulator
        assert _rows(own) == before
    assert not (tmp_path / "real.sqlite").exists()
    listed = _run(["jobs", "--sim", first, "--output-format", "json"], env)
    assert [r["row_id"] for r in json.loads(listed.stdout)] == [r["row_id"] for r in before]


def test_one_ledger_shared_by_two_simulators_and_a_fresh_one_keeps_its_rows_unchanged_and_says_whose(
    lines: tuple[str, str], image_ids: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    first, second = lines
    shared = tmp_path / "shared.sqlite"
    _export(image_ids[3:6], first, env, "--ledger", str(shared))
    before = _rows(shared)
    assert len(before) == 3
    endpoint = json.loads(first)["endpoint"]
    for watch_from in ([], ["--sim", second]):
        result = _run(["jobs", "--watch", "--timeout", "60", "--ledger", str(shared), "--output-format", "csv",
                       *watch_from], env)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert _rows(shared) == before  # never polled, reconciled or changed
        records = list(csv.DictReader(io.StringIO(result.stdout)))
        assert len(records) == 3 and all(r["belongs_to"].startswith(f"{ELSEWHERE}: {endpoint}") for r in records)
        assert "3 jobs belong to other accounts and were left alone: 3 of " + endpoint in result.stderr
    table = _run(["jobs", "--ledger", str(shared)], env)
    assert "ACCOUNT" in table.stdout.splitlines()[0] or endpoint in table.stdout
    assert not (tmp_path / "real.sqlite").exists()
