"""Dated snapshots of a simulator inventory: layout, exact round trip, filters, comparison, atomicity, empty roots."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

import ims_nb
from ims_nb import ImsClient
from ims_nb.errors import ConfigError
from ims_nb.frames import IMAGE_COLUMNS, save_snapshot
from ims_nb.snapshots import CHANGES, REGION_COLUMN, TAKEN_AT_COLUMN, compare_snapshots, snapshot, snapshots

pytestmark = pytest.mark.usefixtures("clean_env")

HOME, OTHER = "cn-north-4", "ap-southeast-1"
DAY1 = datetime(2026, 3, 1, 8, 30, 15, tzinfo=UTC)
DAY2 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


@pytest.fixture()
def images(client: ImsClient) -> pd.DataFrame:
    """The simulator's seed-0 inventory, as the client returns it (one region, no region column)."""
    return client.images()


@pytest.fixture()
def estate(images: pd.DataFrame) -> pd.DataFrame:
    """Two regions' inventories in one frame: the second is a copy with another region (data, not a mock)."""
    both = pd.concat([images.assign(region=HOME), images.assign(region=OTHER)], ignore_index=True)
    return both.astype({REGION_COLUMN: "string"})  # typed, as the frames' text columns are


def _as_read(frame: pd.DataFrame, when: datetime) -> pd.DataFrame:
    """``frame`` as ``snapshots`` gives it back: taken_at and region first, sorted by region then id."""
    ordered = frame.sort_values([REGION_COLUMN, "id"], ignore_index=True)
    ordered.insert(0, TAKEN_AT_COLUMN, pd.array([pd.Timestamp(when)] * len(ordered), dtype="datetime64[ns, UTC]"))
    return ordered[[TAKEN_AT_COLUMN, REGION_COLUMN, *(c for c in frame.columns if c != REGION_COLUMN)]]


def test_an_estate_snapshot_is_one_hive_partition_per_region(estate: pd.DataFrame, tmp_path: Path) -> None:
    written = snapshot(estate, tmp_path, taken_at=DAY1.replace(microsecond=999_000))
    stamp = "taken=2026-03-01T083015Z"  # to the second
    assert written == [tmp_path / f"region={r}" / stamp / "part-0.parquet" for r in (OTHER, HOME)]
    assert REGION_COLUMN not in pd.read_parquet(written[0]).columns  # the folder names it
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted([f"region={HOME}", f"region={OTHER}", stamp, stamp,
                                                                  "part-0.parquet", "part-0.parquet"])  # fmt: skip


def test_the_round_trip_keeps_every_row_value_and_dtype(estate: pd.DataFrame, tmp_path: Path) -> None:
    snapshot(estate, tmp_path, taken_at=DAY1)
    back = snapshots(tmp_path)
    expected = _as_read(estate, DAY1)
    pd.testing.assert_frame_equal(back, expected)
    assert dict(back.dtypes.astype(str)) == {TAKEN_AT_COLUMN: "datetime64[ns, UTC]", REGION_COLUMN: "string",
                                             **IMAGE_COLUMNS}  # fmt: skip
    assert all(type(tags) is list for tags in back["tags"])  # lists, not the numpy arrays pyarrow gives


def test_a_single_region_frame_takes_its_region_from_attrs_or_the_argument(
    images: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"pass region="):
        snapshot(images, tmp_path, taken_at=DAY1)
    assert not any(tmp_path.iterdir())
    snapshot(images, tmp_path, region=HOME, taken_at=DAY1)
    labelled = images.copy()
    labelled.attrs[REGION_COLUMN] = OTHER
    snapshot(labelled, tmp_path, taken_at=DAY1)
    with pytest.raises(ConfigError, match="disagrees"):
        snapshot(labelled, tmp_path, region=HOME, taken_at=DAY2)
    assert snapshots(tmp_path).groupby(REGION_COLUMN).size().to_dict() == {OTHER: len(images), HOME: len(images)}


@pytest.mark.parametrize("region", ["../escape", "", "a/b"])
def test_a_region_must_be_a_plain_name(images: pd.DataFrame, tmp_path: Path, region: str) -> None:
    with pytest.raises(ConfigError, match="plain name"):
        snapshot(images, tmp_path, region=region, taken_at=DAY1)


def test_two_days_read_back_in_order_and_filter_by_time_and_region(estate: pd.DataFrame, tmp_path: Path) -> None:
    snapshot(estate, tmp_path, taken_at=DAY2)
    snapshot(estate.head(5), tmp_path, taken_at=DAY1)  # written later, taken earlier
    back = snapshots(tmp_path)
    assert back.groupby([TAKEN_AT_COLUMN, REGION_COLUMN]).size().tolist() == [5, len(estate) // 2, len(estate) // 2]
    assert back.equals(back.sort_values([TAKEN_AT_COLUMN, REGION_COLUMN, "id"], ignore_index=True))
    assert set(snapshots(tmp_path, since="2026-03-02")[TAKEN_AT_COLUMN]) == {pd.Timestamp(DAY2)}
    assert set(snapshots(tmp_path, regions=OTHER)[REGION_COLUMN]) == {OTHER}
    assert len(snapshots(tmp_path, since=datetime(2026, 3, 2), regions=[HOME, "elsewhere"])) == len(estate) // 2


def test_the_same_region_and_second_is_refused_and_the_first_kept(images: pd.DataFrame, tmp_path: Path) -> None:
    (first,) = snapshot(images, tmp_path, region=HOME, taken_at=DAY1)
    with pytest.raises(ConfigError, match="already exists"):
        snapshot(images.head(1), tmp_path, region=HOME, taken_at=DAY1)
    assert len(pd.read_parquet(first)) == len(images)


def test_compare_snapshots_finds_the_new_the_deleted_and_the_grown(estate: pd.DataFrame, tmp_path: Path) -> None:
    home = (estate[REGION_COLUMN] == HOME).to_numpy()
    deleted, grown = estate[home].iloc[0], estate[~home].iloc[1]
    new = estate[home].iloc[[2]].assign(id="new-image-0001", name="fresh")
    later = pd.concat([estate.drop(index=deleted.name), new], ignore_index=True)
    later.loc[later["id"].eq(grown["id"]) & later[REGION_COLUMN].eq(OTHER), "size_bytes"] += 1024
    later.loc[later["id"].eq(estate["id"].iloc[3]), "size_bytes"] -= 1  # shrunk: not reported
    snapshot(estate, tmp_path, taken_at=DAY1)
    snapshot(later, tmp_path, taken_at=DAY2)
    back = snapshots(tmp_path)
    changes = compare_snapshots(back[back[TAKEN_AT_COLUMN] == DAY1], back[back[TAKEN_AT_COLUMN] == DAY2])
    assert changes[["change", REGION_COLUMN, "id", "name"]].values.tolist() == [
        ["new", HOME, "new-image-0001", "fresh"],
        ["deleted", HOME, deleted["id"], deleted["name"]],
        ["grown", OTHER, grown["id"], grown["name"]],
    ]
    assert changes["size_bytes_after"].iloc[2] - changes["size_bytes_before"].iloc[2] == 1024
    assert changes["size_bytes_before"].isna().tolist() == [True, False, False]
    assert tuple(changes["change"]) == CHANGES and str(changes["size_bytes_before"].dtype) == "Int64"


def test_compare_snapshots_of_single_region_frames_matches_by_id(images: pd.DataFrame) -> None:
    changes = compare_snapshots(images.head(3), images.tail(len(images) - 1))
    assert changes["change"].value_counts().to_dict() == {"new": len(images) - 3, "deleted": 1}
    assert changes[REGION_COLUMN].isna().all() and changes.columns[0] == "change"
    assert compare_snapshots(images, images).empty
    with pytest.raises(ConfigError, match="size_bytes"):
        compare_snapshots(images.drop(columns="size_bytes"), images)


def test_a_failed_write_leaves_nothing_behind(estate: pd.DataFrame, tmp_path: Path) -> None:
    (kept,) = snapshot(estate[estate[REGION_COLUMN] == OTHER], tmp_path, taken_at=DAY1)
    broken = estate.assign(note=["text" if region == OTHER else object() for region in estate[REGION_COLUMN]])
    with pytest.raises(Exception, match="object"):  # pyarrow cannot store the second region's rows
        snapshot(broken, tmp_path, taken_at=DAY2)
    assert sorted(tmp_path.rglob("*")) == [tmp_path / f"region={OTHER}", kept.parent, kept]  # no temporary folder
    assert set(snapshots(tmp_path)[TAKEN_AT_COLUMN]) == {pd.Timestamp(DAY1)}


def test_an_empty_or_missing_root_reads_as_an_empty_typed_frame(images: pd.DataFrame, tmp_path: Path) -> None:
    save_snapshot(images, tmp_path)  # the content-addressed files are not dated snapshots
    (tmp_path / f"region={HOME}" / ".taken=2026-03-01T083015Z-abc").mkdir(parents=True)  # a writer's leftover
    for root in (tmp_path, tmp_path / "missing"):
        empty = snapshots(root)
        assert empty.empty
        assert dict(empty.dtypes.astype(str)) == {TAKEN_AT_COLUMN: "datetime64[ns, UTC]", REGION_COLUMN: "string",
                                                  **IMAGE_COLUMNS}  # fmt: skip


def test_the_functions_are_public_names_of_the_package() -> None:
    assert (ims_nb.snapshot, ims_nb.snapshots, ims_nb.compare_snapshots) == (snapshot, snapshots, compare_snapshots)
