"""Typed frames from image and job records: columns, dtypes, values, and odd or broken input."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pandas as pd
import pytest

from ims_nb import frames
from ims_nb.frames import IMAGE_COLUMNS, JOB_COLUMNS, RAW_COLUMN, images_frame, job_records_frame
from ims_nb.sim.clock import SIM_EPOCH
from ims_nb.sim.inventory import build_inventory
from ims_nb.sim.jobs import JOB_TYPE, JobPlan, plan_job

GiB = 1024**3
NA = pd.NA
NAT = pd.NaT
NAN = math.nan
ABSENT = object()  # marks a field removed from the record

#: The documented columns (the README lists these); changing them is an API change.
DOCUMENTED_IMAGE_COLUMNS = [
    ("id", "string"),
    ("name", "string"),
    ("status", "string"),
    ("platform", "string"),
    ("os_version", "string"),
    ("os_type", "string"),
    ("os_bit", "Int64"),
    ("image_type", "string"),
    ("visibility", "string"),
    ("virtual_env_type", "string"),
    ("disk_format", "string"),
    ("whole_image", "boolean"),
    ("encrypted", "boolean"),
    ("kms_key_id", "string"),
    ("source_image_id", "string"),
    ("product_code", "string"),
    ("size_bytes", "Int64"),
    ("size_gb", "float64"),
    ("min_disk_gb", "Int64"),
    ("created_at", "datetime64[ns, UTC]"),
    ("updated_at", "datetime64[ns, UTC]"),
    ("tags", "object"),
    ("enterprise_project_id", "string"),
    ("architecture", "string"),
    ("owner", "string"),
    ("protected", "boolean"),
    ("root_origin", "string"),
    ("backup_id", "string"),
    ("min_ram_mb", "Int64"),
    ("hw_firmware_type", "string"),
]
DOCUMENTED_JOB_COLUMNS = [
    ("job_id", "string"),
    ("image_id", "string"),
    ("status", "string"),
    ("job_type", "string"),
    ("begin_time", "datetime64[ns, UTC]"),
    ("end_time", "datetime64[ns, UTC]"),
    ("duration_s", "float64"),
    ("process_percent", "float64"),
    ("error_code", "string"),
    ("fail_reason", "string"),
]


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return build_inventory(0, 300).images


@pytest.fixture(scope="module")
def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    return images_frame(records)


def assert_typed(df: pd.DataFrame, columns: Any) -> None:
    """The frame has exactly ``columns`` in order, each with its documented dtype."""
    assert list(df.columns) == list(columns)
    for column, dtype in columns.items():
        assert df[column].dtype == pd.api.types.pandas_dtype(dtype), column


def assert_same(actual: Any, expected: Any, label: str = "") -> None:
    """Equal values, where <NA>, NaT and NaN must match exactly (not merely compare unequal)."""
    if expected is NA:
        assert actual is NA, f"{label}: {actual!r} is not <NA>"
    elif expected is NAT:
        assert actual is NAT, f"{label}: {actual!r} is not NaT"
    elif isinstance(expected, float) and math.isnan(expected):
        assert isinstance(actual, float) and math.isnan(actual), f"{label}: {actual!r} is not NaN"
    else:
        assert actual == expected and type(actual) is not type(NA), f"{label}: {actual!r} != {expected!r}"


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC))


def expected_image_row(record: dict[str, Any]) -> dict[str, Any]:
    """What one simulator record must become, computed the slow, obvious way."""
    size = int(record["__image_size"])
    return {
        "id": record["id"],
        "name": record["name"],
        "status": record["status"],
        "platform": record["__platform"],
        "os_version": record["__os_version"],
        "os_type": record["__os_type"],
        "os_bit": int(record["__os_bit"]),
        "image_type": record["__imagetype"],
        "visibility": record["visibility"],
        "virtual_env_type": record["virtual_env_type"],
        "disk_format": record["disk_format"],
        "whole_image": record["__whole_image"],
        "encrypted": bool(record.get("__system__cmkid")),
        "kms_key_id": record.get("__system__cmkid") or NA,
        "source_image_id": record["__originalimagename"] or NA,
        "product_code": record["__productcode"] or NA,
        "size_bytes": size,
        "size_gb": size / GiB,
        "min_disk_gb": record["min_disk"],
        "created_at": utc(record["created_at"]),
        "updated_at": utc(record["updated_at"]),
        "tags": record["tags"],
        "enterprise_project_id": record["enterprise_project_id"] or "0",
        "architecture": record["architecture"],
        "owner": record["owner"],
        "protected": record["protected"],
        "root_origin": record["__root_origin"] or NA,
        "backup_id": record["__backup_id"] or NA,
        "min_ram_mb": record["min_ram"],
        "hw_firmware_type": record["hw_firmware_type"],
    }


def test_the_column_lists_are_the_documented_ones() -> None:
    assert list(IMAGE_COLUMNS.items()) == DOCUMENTED_IMAGE_COLUMNS
    assert list(JOB_COLUMNS.items()) == DOCUMENTED_JOB_COLUMNS
    assert RAW_COLUMN == "raw" and RAW_COLUMN not in IMAGE_COLUMNS


def test_the_public_surface_is_exported() -> None:
    defined = {
        name
        for name, value in vars(frames).items()
        if not name.startswith("_") and (name.isupper() or getattr(value, "__module__", None) == frames.__name__)
    }
    assert sorted(frames.__all__) == sorted(defined)


def test_simulator_records_give_the_documented_dtypes(records: list[dict[str, Any]], frame: pd.DataFrame) -> None:
    assert_typed(frame, IMAGE_COLUMNS)
    assert len(frame) == len(records)
    assert isinstance(frame.index, pd.RangeIndex)


def test_simulator_records_give_the_right_value_in_every_column(
    records: list[dict[str, Any]], frame: pd.DataFrame
) -> None:
    expected_rows = [expected_image_row(record) for record in records]
    for column in IMAGE_COLUMNS:
        for position, actual in enumerate(frame[column].array):
            assert_same(actual, expected_rows[position][column], f"row {position} {column}")


def test_the_simulator_mix_reaches_every_conversion(frame: pd.DataFrame) -> None:
    """The value test above is only as good as the variety it sees."""
    assert frame["whole_image"].any() and not frame["whole_image"].all()
    assert frame["encrypted"].any() and frame["kms_key_id"].isna().any()
    assert frame["product_code"].notna().any() and frame["product_code"].isna().any()
    assert frame["source_image_id"].notna().any() and frame["source_image_id"].isna().any()
    assert (frame["root_origin"] == "file").any() and frame["backup_id"].notna().any()
    assert set(frame["architecture"]) == {"x86", "arm"}
    assert frame["protected"].any() and {"gold", "private", "shared", "market"} <= set(frame["image_type"])
    assert (frame["tags"].map(len) == 0).any() and (frame["tags"].map(len) == 2).any()


def test_tags_are_lists_of_strings(records: list[dict[str, Any]], frame: pd.DataFrame) -> None:
    for record, tags in zip(records, frame["tags"], strict=True):
        assert type(tags) is list and tags == record["tags"]


def test_one_stray_tag_normalises_only_what_needs_it() -> None:
    tag_values = [["a", "b"], None, ["c", 1, None], "d,e", []]
    tags = images_frame([{"tags": value} for value in tag_values])["tags"].tolist()
    assert tags == [["a", "b"], [], ["c", "1"], ["d", "e"], []]
    assert all(type(row) is list for row in tags)


@pytest.mark.parametrize("empty", [[], (), iter(())], ids=["list", "tuple", "iterator"])
def test_empty_input_gives_the_same_columns_and_dtypes(empty: Any, frame: pd.DataFrame) -> None:
    result = images_frame(empty)
    assert result.empty and len(result) == 0
    assert_typed(result, IMAGE_COLUMNS)
    pd.testing.assert_series_equal(result.dtypes, frame.dtypes)


def test_empty_input_with_raw_has_the_raw_column() -> None:
    result = images_frame([], raw=True)
    assert list(result.columns) == [*IMAGE_COLUMNS, RAW_COLUMN]
    assert result[RAW_COLUMN].dtype == object


def test_raw_keeps_the_original_records(records: list[dict[str, Any]], frame: pd.DataFrame) -> None:
    result = images_frame(records, raw=True)
    assert list(result.columns) == [*IMAGE_COLUMNS, RAW_COLUMN]
    assert all(kept is record for kept, record in zip(result[RAW_COLUMN], records, strict=True))
    pd.testing.assert_frame_equal(result.drop(columns=RAW_COLUMN), frame)


def test_a_generator_of_records_is_read_once(records: list[dict[str, Any]], frame: pd.DataFrame) -> None:
    def generate() -> Iterator[dict[str, Any]]:
        yield from records

    pd.testing.assert_frame_equal(images_frame(generate()), frame)


def one_image(records: list[dict[str, Any]], field: str, value: Any) -> pd.DataFrame:
    """A frame of one simulator record with ``field`` set to ``value`` (or removed when ``ABSENT``)."""
    record = dict(records[-1])
    if value is ABSENT:
        record.pop(field, None)
    else:
        record[field] = value
    df = images_frame([record])
    assert_typed(df, IMAGE_COLUMNS)
    return df


ODD_FIELDS = [
    # field, value, column, expected
    ("__image_size", 12_345, "size_bytes", 12_345),
    ("__image_size", "12345", "size_bytes", 12_345),
    ("__image_size", " 42 ", "size_bytes", 42),
    ("__image_size", "abc", "size_bytes", NA),
    ("__image_size", "", "size_bytes", NA),
    ("__image_size", None, "size_bytes", NA),
    ("__image_size", ABSENT, "size_bytes", NA),
    ("__image_size", "12.5", "size_bytes", NA),
    ("__image_size", True, "size_bytes", NA),
    ("__image_size", [1], "size_bytes", NA),
    ("__image_size", "99999999999999999999", "size_bytes", NA),
    ("__image_size", "inf", "size_bytes", NA),
    ("__image_size", 3 * GiB, "size_gb", 3.0),
    ("__image_size", "abc", "size_gb", NAN),
    ("__image_size", ABSENT, "size_gb", NAN),
    ("__os_bit", 64, "os_bit", 64),
    ("__os_bit", "32", "os_bit", 32),
    ("__os_bit", "x", "os_bit", NA),
    ("__os_bit", None, "os_bit", NA),
    ("__os_bit", ABSENT, "os_bit", NA),
    ("min_disk", "40", "min_disk_gb", 40),
    ("min_disk", 40.0, "min_disk_gb", 40),
    ("min_disk", None, "min_disk_gb", NA),
    ("min_disk", {"gb": 40}, "min_disk_gb", NA),
    ("min_ram", "abc", "min_ram_mb", NA),
    ("min_ram", "2048", "min_ram_mb", 2048),
    ("tags", None, "tags", []),
    ("tags", ABSENT, "tags", []),
    ("tags", "", "tags", []),
    ("tags", "env.prod", "tags", ["env.prod"]),
    ("tags", "env.prod, team.web", "tags", ["env.prod", "team.web"]),
    ("tags", ("a", "b"), "tags", ["a", "b"]),
    ("tags", ["a", 1, None], "tags", ["a", "1"]),
    ("tags", {"key": "value"}, "tags", []),
    ("tags", 7, "tags", []),
    ("protected", "True", "protected", True),
    ("protected", "false", "protected", False),
    ("protected", True, "protected", True),
    ("protected", 1, "protected", True),
    ("protected", None, "protected", NA),
    ("protected", ABSENT, "protected", NA),
    ("protected", "maybe", "protected", NA),
    ("__whole_image", True, "whole_image", True),
    ("__whole_image", "true", "whole_image", True),
    ("__whole_image", "True", "whole_image", True),
    ("__whole_image", " TRUE ", "whole_image", True),
    ("__whole_image", "false", "whole_image", False),
    ("__whole_image", "False", "whole_image", False),
    ("__whole_image", False, "whole_image", False),
    ("__whole_image", 0, "whole_image", False),
    ("__whole_image", ABSENT, "whole_image", False),
    ("__whole_image", None, "whole_image", False),
    ("__whole_image", "yes", "whole_image", NA),
    ("__whole_image", [True], "whole_image", NA),
    ("__system__cmkid", "kms-key-1", "encrypted", True),
    ("__system__cmkid", "kms-key-1", "kms_key_id", "kms-key-1"),
    ("__system__cmkid", "", "encrypted", False),
    ("__system__cmkid", "", "kms_key_id", NA),
    ("__system__cmkid", None, "encrypted", False),
    ("__system__cmkid", ABSENT, "encrypted", False),
    ("__system__cmkid", ABSENT, "kms_key_id", NA),
    ("__originalimagename", "", "source_image_id", NA),
    ("__originalimagename", ABSENT, "source_image_id", NA),
    ("__originalimagename", "parent-id", "source_image_id", "parent-id"),
    ("__productcode", "", "product_code", NA),
    ("__productcode", "00301-abc", "product_code", "00301-abc"),
    ("__root_origin", "", "root_origin", NA),
    ("__root_origin", "file", "root_origin", "file"),
    ("__backup_id", "", "backup_id", NA),
    ("__backup_id", None, "backup_id", NA),
    ("__backup_id", "backup-1", "backup_id", "backup-1"),
    ("enterprise_project_id", ABSENT, "enterprise_project_id", "0"),
    ("enterprise_project_id", "", "enterprise_project_id", "0"),
    ("enterprise_project_id", None, "enterprise_project_id", "0"),
    ("enterprise_project_id", "ep-1", "enterprise_project_id", "ep-1"),
    ("architecture", ABSENT, "architecture", "x86"),
    ("architecture", None, "architecture", "x86"),
    ("architecture", "arm", "architecture", "arm"),
    ("created_at", "2018-09-06T14:03:27Z", "created_at", utc("2018-09-06T14:03:27Z")),
    ("created_at", "2018-09-06T22:03:27+08:00", "created_at", utc("2018-09-06T14:03:27Z")),
    ("created_at", "not a date", "created_at", NAT),
    ("created_at", "2018-13-45T14:03:27Z", "created_at", NAT),
    ("created_at", "", "created_at", NAT),
    ("created_at", None, "created_at", NAT),
    ("created_at", 1_536_242_607, "created_at", NAT),
    ("created_at", "9999-12-31T00:00:00Z", "created_at", NAT),
    ("updated_at", ABSENT, "updated_at", NAT),
    ("name", 123, "name", "123"),
    ("name", None, "name", NA),
    ("id", ABSENT, "id", NA),
    ("status", ABSENT, "status", NA),
    ("__platform", None, "platform", NA),
    ("hw_firmware_type", ABSENT, "hw_firmware_type", NA),
]


@pytest.mark.parametrize(("field", "value", "column", "expected"), ODD_FIELDS)
def test_odd_fields_become_typed_values_or_missing(
    records: list[dict[str, Any]], field: str, value: Any, column: str, expected: Any
) -> None:
    actual = one_image(records, field, value)[column].iloc[0]
    if isinstance(expected, list):
        assert type(actual) is list and actual == expected
    else:
        assert_same(actual, expected, f"{field}={value!r}")


def test_mixed_types_in_one_column_convert_row_by_row() -> None:
    sizes = ["1", 2, "abc", None, "12.5", True, "99999999999999999999", 3.0, ""]
    df = images_frame([{"__image_size": size, "__os_bit": size} for size in sizes])
    expected = [1, 2, NA, NA, NA, NA, NA, 3, NA]
    for column in ("size_bytes", "os_bit"):
        assert df[column].dtype == "Int64"
        for position, (actual, wanted) in enumerate(zip(df[column].tolist(), expected, strict=True)):
            assert_same(actual, wanted, f"{column} row {position}")
    flags = images_frame([{"__whole_image": v} for v in (True, "true", "False", None, "?", 1)])["whole_image"]
    assert flags.tolist() == [True, True, False, False, NA, True]


def test_empty_and_all_null_records_are_all_missing_or_defaults() -> None:
    fields = {"id", "name", "__image_size", "__os_bit", "tags", "protected", "__whole_image", "created_at"}
    fields |= {"enterprise_project_id", "architecture", "__system__cmkid", "min_disk", "min_ram"}
    df = images_frame([{}, dict.fromkeys(fields)])
    assert_typed(df, IMAGE_COLUMNS)
    for _, row in df.iterrows():
        assert row["whole_image"] is False and row["encrypted"] is False
        assert row["tags"] == [] and row["enterprise_project_id"] == "0" and row["architecture"] == "x86"
        assert math.isnan(row["size_gb"])
        for column in ("id", "name", "os_bit", "size_bytes", "min_disk_gb", "protected", "kms_key_id"):
            assert row[column] is NA, column
        assert row["created_at"] is NAT and row["updated_at"] is NAT


@pytest.mark.parametrize("bad", ["a string", None, 42, ["id", "x"], ("id", "x")])
def test_a_record_that_is_not_a_mapping_is_named_by_position(records: list[dict[str, Any]], bad: Any) -> None:
    with pytest.raises(TypeError, match=r"record 2 is a \w+, not a mapping"):
        images_frame([records[0], records[1], bad, records[2]])
    with pytest.raises(TypeError, match=r"record 1 is a \w+, not a mapping"):
        job_records_frame([{}, bad])


def test_any_mapping_is_a_record(records: list[dict[str, Any]]) -> None:
    df = images_frame([MappingProxyType(records[0])])
    assert df["id"].iloc[0] == records[0]["id"]


def test_a_mapping_with_defaults_is_read_without_changing_it(records: list[dict[str, Any]]) -> None:
    record: defaultdict[str, Any] = defaultdict(lambda: "made up", records[0])
    df = images_frame([records[1], record])
    assert set(record) == set(records[0])
    assert df["kms_key_id"].isna().all() and df["id"].tolist() == [records[1]["id"], records[0]["id"]]


def test_a_field_missing_from_a_later_record_is_missing_there_only(records: list[dict[str, Any]]) -> None:
    later = {key: value for key, value in records[1].items() if key not in {"name", "__image_size", "tags"}}
    df = images_frame([records[0], later])
    assert df["name"].tolist() == [records[0]["name"], NA]
    assert df["size_bytes"].tolist() == [int(records[0]["__image_size"]), NA]
    assert df["tags"].tolist() == [records[0]["tags"], []]


def test_extra_fields_are_ignored(records: list[dict[str, Any]], frame: pd.DataFrame) -> None:
    noisy = [{**record, "__something_new": {"nested": [1, 2]}, "virtual_size": [None]} for record in records]
    pd.testing.assert_frame_equal(images_frame(noisy), frame)


# --- jobs ---------------------------------------------------------------------------------------------------------


def export_plan(*, failing: bool) -> JobPlan:
    """A job plan from the simulator's duration model, the first (non-)failing one by sequence number."""
    image = build_inventory(0, 40).images[-1]
    for sequence in range(1000):
        plan = plan_job(
            seed=0,
            sequence=sequence,
            image=image,
            bucket="ims-exports",
            key="exports/img.qcow2",
            file_format="qcow2",
            quick=False,
            now=SIM_EPOCH.timestamp(),
        )
        if bool(plan.fail_code) == failing:
            return plan
    raise AssertionError("no such plan")


def job_views(*, progress: bool) -> tuple[list[dict[str, Any]], JobPlan, JobPlan]:
    ok, failing = export_plan(failing=False), export_plan(failing=True)
    moments = [ok.submitted_at, (ok.started_at + ok.finished_at) / 2, ok.finished_at + 60]
    views = [ok.view(moment, progress=progress) for moment in moments]
    views.append(failing.view(failing.finished_at + 60, progress=progress))
    return views, ok, failing


def test_job_frame_from_simulator_records_in_every_state() -> None:
    views, ok, failing = job_views(progress=True)
    df = job_records_frame(views)
    assert_typed(df, JOB_COLUMNS)
    assert df["status"].tolist() == ["INIT", "RUNNING", "SUCCESS", "FAIL"]
    assert df["job_id"].tolist() == [ok.job_id] * 3 + [failing.job_id]
    assert df["image_id"].tolist() == [ok.image_id] * 3 + [failing.image_id]
    assert (df["job_type"] == JOB_TYPE).all()
    begin = pd.Timestamp(ok.submitted_at, unit="s", tz="UTC")
    assert (df["begin_time"] == begin).all()
    assert df["end_time"].iloc[:2].isna().all()
    assert df["end_time"].iloc[2] == pd.Timestamp(views[2]["end_time"])
    assert df["duration_s"].iloc[:2].isna().all()
    assert df["duration_s"].iloc[2] == pytest.approx(ok.finished_at - ok.submitted_at, abs=0.002)
    assert df["duration_s"].iloc[3] == pytest.approx(failing.finished_at - failing.submitted_at, abs=0.002)
    assert df["process_percent"].tolist() == [view["entities"]["process_percent"] for view in views]
    assert df["process_percent"].iloc[2] == 100.0 and 0 < df["process_percent"].iloc[1] < 100
    assert df["error_code"].iloc[:3].isna().all() and df["fail_reason"].iloc[:3].isna().all()
    assert df["error_code"].iloc[3] == failing.fail_code and df["fail_reason"].iloc[3] == failing.fail_reason


def test_job_frame_from_show_job_records_has_no_percent() -> None:
    views, _ok, _failing = job_views(progress=False)
    df = job_records_frame(views)
    assert_typed(df, JOB_COLUMNS)
    assert df["process_percent"].isna().all()
    assert df["duration_s"].notna().tolist() == [False, False, True, True]


def test_job_times_keep_their_milliseconds() -> None:
    record = {"begin_time": "2024-11-06T06:46:51.929Z", "end_time": "2024-11-06T06:48:01.930Z"}
    df = job_records_frame([record])
    assert df["begin_time"].iloc[0] == pd.Timestamp("2024-11-06 06:46:51.929", tz="UTC")
    assert df["duration_s"].iloc[0] == pytest.approx(70.001)


def test_empty_job_input_gives_the_same_columns_and_dtypes() -> None:
    assert_typed(job_records_frame([]), JOB_COLUMNS)
    pd.testing.assert_series_equal(job_records_frame([]).dtypes, job_records_frame(job_views(progress=True)[0]).dtypes)


@pytest.mark.parametrize(
    ("record", "column", "expected"),
    [
        ({}, "job_id", NA),
        ({"entities": None}, "image_id", NA),
        ({"entities": "oops"}, "process_percent", NAN),
        ({"entities": {"process_percent": "55.5"}}, "process_percent", 55.5),
        ({"entities": {"process_percent": "abc"}}, "process_percent", NAN),
        ({"entities": {"process_percent": True}}, "process_percent", NAN),
        ({"entities": {"image_id": 7}}, "image_id", "7"),
        ({"begin_time": "2024-11-06T06:46:51.929Z", "end_time": ""}, "end_time", NAT),
        ({"begin_time": "2024-11-06T06:46:51.929Z", "end_time": ""}, "duration_s", NAN),
        ({"begin_time": "garbage", "end_time": "2024-11-06T06:46:51.929Z"}, "duration_s", NAN),
        ({"begin_time": 5, "end_time": None}, "begin_time", NAT),
        ({"error_code": None, "fail_reason": None}, "error_code", NA),
        ({"error_code": "", "fail_reason": ""}, "fail_reason", NA),
        ({"error_code": "IMG.0071", "extra": [1]}, "error_code", "IMG.0071"),
    ],
)
def test_odd_job_records_become_typed_values_or_missing(record: dict[str, Any], column: str, expected: Any) -> None:
    df = job_records_frame([record])
    assert_typed(df, JOB_COLUMNS)
    assert_same(df[column].iloc[0], expected, column)


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        (["1", "2", "3"], [1, 2, 3]),
        (["1", "2", "abc"], [1, 2, NA]),
        (["1", "", " 7 "], [1, NA, 7]),
        (["1", "99999999999999999999"], [1, NA]),
        ([1, 2, 3], [1, 2, 3]),
        ([1, 2**70], [1, NA]),
        ([1.0, 2.5], [1, NA]),
    ],
)
def test_uniform_columns_and_their_exceptions_convert_alike(sizes: list[Any], expected: list[Any]) -> None:
    column = images_frame([{"__image_size": size} for size in sizes])["size_bytes"]
    assert column.dtype == "Int64"
    for position, (actual, wanted) in enumerate(zip(column.tolist(), expected, strict=True)):
        assert_same(actual, wanted, f"row {position}")
