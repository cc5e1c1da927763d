"""The committed ``data/`` matches the simulator today, its dictionary is complete, and its example plan is accepted."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ims_nb.cli import main
from ims_nb.frames import IMAGE_COLUMNS, save_snapshot
from ims_nb.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_data  # noqa: E402  (tools/ is not a package: its scripts are run by path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tools/build_data.py`` run today into a fresh folder."""
    root = tmp_path_factory.mktemp("data-root")
    build_data.build(root)
    return root


@pytest.fixture(scope="module")
def committed() -> pd.DataFrame:
    return pd.read_parquet(ROOT / build_data.PARQUET)


def test_the_committed_sample_equals_what_the_simulator_gives_today(built: Path, committed: pd.DataFrame) -> None:
    today = pd.read_parquet(built / build_data.PARQUET)
    assert dict(committed.dtypes.astype(str)) == dict(today.dtypes.astype(str))
    pd.testing.assert_frame_equal(committed, today)
    assert len(committed) == build_data.IMAGES and list(committed.columns) == list(IMAGE_COLUMNS)


def test_the_sample_keeps_the_frames_dtypes(committed: pd.DataFrame) -> None:
    assert dict(committed.dtypes.astype(str)) == dict(IMAGE_COLUMNS)


@pytest.mark.parametrize("path", [build_data.CSV, build_data.DICTIONARY, build_data.PLAN], ids=str)
def test_every_committed_text_file_is_what_the_builder_writes_today(built: Path, path: Path) -> None:
    assert (ROOT / path).read_text() == (built / path).read_text(), f"run tools/build_data.py ({path} is stale)"


def test_the_csv_twin_holds_the_same_rows(committed: pd.DataFrame) -> None:
    twin = pd.read_csv(ROOT / build_data.CSV, dtype=str, keep_default_na=False)
    assert list(twin.columns) == list(committed.columns)
    assert list(twin["id"]) == list(committed["id"])
    assert list(twin["tags"]) == [build_data.TAG_SEPARATOR.join(tags) for tags in committed["tags"]]


def test_the_dictionary_lists_every_column_with_its_dtype(committed: pd.DataFrame) -> None:
    text = (ROOT / build_data.DICTIONARY).read_text()
    rows = [line.split("|")[1:4] for line in text.splitlines() if line.startswith("| `")]
    listed = {column.strip().strip("`"): dtype.strip().strip("`") for column, dtype, _ in rows}
    assert listed == dict(committed.dtypes.astype(str))
    assert all(meaning.strip() for *_, meaning in rows), "a column without a meaning"


@pytest.fixture()
def world() -> Iterator[Simulator]:
    with Simulator(seed=build_data.SEED, images=build_data.IMAGES, manual_clock=True) as sim:
        yield sim


def test_the_example_plan_is_accepted_by_export_plan_dry_run(
    world: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = ROOT / build_data.PLAN
    rows = pd.read_csv(plan)
    argv = ["export", "--plan", str(plan), "--dry-run", "--output-format", "csv",
            "--ledger", str(tmp_path / "l.sqlite"), "--sim", json.dumps(world.info.as_json_dict())]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    report = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert sorted(report["image_id"]) == sorted(rows["image_id"])


def test_save_snapshot_writes_one_parquet_file_per_distinct_inventory(committed: pd.DataFrame, tmp_path: Path) -> None:
    path = save_snapshot(committed, tmp_path / "snapshots")
    assert path.parent == tmp_path / "snapshots" and path.name.startswith("inventory-") and path.suffix == ".parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(path), committed)
    assert save_snapshot(committed, tmp_path / "snapshots") == path  # the same inventory: the same file
    other = save_snapshot(committed.head(3), tmp_path / "snapshots")
    assert other != path and sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, other.name])
