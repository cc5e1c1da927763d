"""``selection``: size bands, exportability, text search and filters, pages; hand-built frames and the simulator's."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

from ims_nb import ImsClient
from ims_nb.errors import ConfigError
from ims_nb.frames import images_frame
from ims_nb.preflight import preflight_summary
from ims_nb.selection import (
    SIZE_BANDS,
    exportability,
    filter_images,
    is_estate,
    page,
    page_count,
    projects_in,
    regions_in,
    scope_note,
)
from ims_nb.vocab import NORMAL_EXPORT_LIMIT, SIZE_LIMIT

pytestmark = pytest.mark.usefixtures("clean_env")

GiB = 1024**3
PROJECT = "p0000000000000000000000000000001"
OTHER = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def record(image_id: str, **fields: Any) -> dict[str, Any]:
    """An ImageInfo record the service exports (CentOS, 10 GiB, private, active, own); ``fields`` override."""
    base: dict[str, Any] = {
        "id": image_id, "name": f"web-{image_id}", "status": "active", "__platform": "CentOS",
        "__os_version": "CentOS 7.9 64bit", "__imagetype": "private", "visibility": "private",
        "virtual_env_type": "FusionCompute", "owner": PROJECT, "__image_size": str(10 * GiB),
    }  # fmt: skip
    return {**base, **fields}


@pytest.fixture()
def images() -> pd.DataFrame:
    return images_frame([
        record("a1", name="Gateway-Prod", __platform="Ubuntu", __os_version="Ubuntu 20.04 server 64bit"),
        record("b2", name="db-primary", __platform="Windows", __os_version="Windows Server 2019", status="saving"),
        record("c3", name="cache (c++)", __platform="Debian", __os_version="Debian GNU/Linux 12.0.0 64bit"),
        record("d4", name="ubuntu-mirror", __platform="CentOS", __image_size=str(200 * GiB)),
        record("e5", name="big-web", __platform=None, __image_size=str(SIZE_LIMIT), status="killed"),
        record("f6", name="no-size", __image_size=None),
    ])  # fmt: skip


def ids(frame: pd.DataFrame) -> list[str]:
    return frame["id"].tolist()  # type: ignore[no-any-return]


# --- size bands -----------------------------------------------------------------------------------


def test_size_bands_are_ordered_and_follow_the_export_limits() -> None:
    assert list(SIZE_BANDS) == ["up to 16 GB", "16–128 GB", "128 GB–1 TB", "1 TB and over"]
    bounds = list(SIZE_BANDS.values())
    assert all(high == next_low for (_, high), (next_low, _) in zip(bounds, bounds[1:], strict=False))
    assert SIZE_BANDS["16–128 GB"][1] == NORMAL_EXPORT_LIMIT and SIZE_BANDS["1 TB and over"][0] == SIZE_LIMIT - 1


@pytest.mark.parametrize(
    ("size_bytes", "band"),
    [
        (0, "up to 16 GB"),
        (16 * GiB, "up to 16 GB"),
        (16 * GiB + 1, "16–128 GB"),
        (NORMAL_EXPORT_LIMIT, "16–128 GB"),  # exactly 128 GiB still exports normally
        (NORMAL_EXPORT_LIMIT + 1, "128 GB–1 TB"),
        (SIZE_LIMIT - 1, "128 GB–1 TB"),
        (SIZE_LIMIT, "1 TB and over"),  # exactly 1 TiB is refused (size-limit)
        (5 * SIZE_LIMIT, "1 TB and over"),
    ],
)
def test_each_size_falls_in_exactly_one_band(size_bytes: int, band: str) -> None:
    frame = images_frame([record("x", __image_size=str(size_bytes))])
    assert [b for b in SIZE_BANDS if len(filter_images(frame, size_bands=[b]))] == [band]


def test_an_unknown_size_is_in_no_band_but_passes_without_a_band_filter(images: pd.DataFrame) -> None:
    assert "f6" not in ids(filter_images(images, size_bands=list(SIZE_BANDS)))
    assert "f6" in ids(filter_images(images))


def test_several_bands_are_a_union(images: pd.DataFrame) -> None:
    assert ids(filter_images(images, size_bands=["128 GB–1 TB", "1 TB and over"])) == ["d4", "e5"]


# --- text search ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["a1", "b2", "c3", "d4", "e5", "f6"]),
        ("   ", ["a1", "b2", "c3", "d4", "e5", "f6"]),
        ("gateway", ["a1"]),  # name, any case
        ("PROD gate", ["a1"]),  # every word, any order
        ("ubuntu", ["a1", "d4"]),  # platform of one, name of the other
        ("ubuntu 20.04", ["a1"]),  # os_version
        ("ubuntu mirror", ["d4"]),
        ("ubuntu windows", []),  # all words must match
        ("b2", ["b2"]),  # id
        ("(c++)", ["c3"]),  # literal, not a regular expression
        ("server 2019", ["b2"]),
        ("centos-web", []),  # no match across columns
    ],
)
def test_word_search(images: pd.DataFrame, text: str, expected: list[str]) -> None:
    assert ids(filter_images(images, text=text)) == expected


# --- multi-filters and exportable-only ------------------------------------------------------------


def test_platform_and_status_filters(images: pd.DataFrame) -> None:
    assert ids(filter_images(images, platforms=["Ubuntu", "Windows"])) == ["a1", "b2"]
    assert ids(filter_images(images, platforms=())) == ids(images)  # empty: all, unknown platform included
    assert ids(filter_images(images, statuses=["saving", "killed"])) == ["b2", "e5"]
    assert ids(filter_images(images, statuses={"active"}, platforms=("CentOS",))) == ["d4", "f6"]


def test_filters_keep_order_and_index(images: pd.DataFrame) -> None:
    shifted = images.set_axis(range(100, 100 + len(images)))
    found = filter_images(shifted, statuses=["killed", "saving"])
    assert ids(found) == ["b2", "e5"] and list(found.index) == [101, 104]
    assert list(found.columns) == list(images.columns)


def test_exportable_only_uses_the_given_series(images: pd.DataFrame) -> None:
    marks = pd.Series([True, False, True, True, False, True], index=images.index)
    assert ids(filter_images(images, exportable=marks, exportable_only=True)) == ["a1", "c3", "d4", "f6"]
    assert ids(filter_images(images, exportable=marks)) == ids(images)
    partial = marks.iloc[:2]  # rows the series lacks count as not exportable
    assert ids(filter_images(images, exportable=partial, exportable_only=True)) == ["a1"]


def test_every_filter_at_once(images: pd.DataFrame) -> None:
    marks = exportability(images, client=StubClient())
    found = filter_images(images, text="u", platforms=["Ubuntu", "CentOS"], statuses=["active"],
                          size_bands=["128 GB–1 TB"], exportable=marks, exportable_only=True)  # fmt: skip
    assert ids(found) == ["d4"]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"text": None}, "text"),
        ({"platforms": "Ubuntu"}, "platforms"),  # a bare string is not a list of platforms
        ({"statuses": [1]}, "statuses"),
        ({"size_bands": ["huge"]}, "size_bands"),
        ({"size_bands": 16}, "size_bands"),
        ({"exportable_only": "yes", "exportable": pd.Series(dtype=bool)}, "exportable_only"),
        ({"exportable_only": True}, "exportable_only"),
        ({"exportable": [True]}, "exportable"),
    ],
)
def test_bad_filter_arguments_are_config_errors(images: pd.DataFrame, arguments: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        filter_images(images, **arguments)


def test_filter_needs_a_frame() -> None:
    with pytest.raises(ConfigError, match="images"):
        filter_images([{"id": "x"}])


# --- pages ----------------------------------------------------------------------------------------


def test_pages(images: pd.DataFrame) -> None:
    assert [page_count(rows, 20) for rows in (0, 1, 20, 21, 45)] == [1, 1, 1, 2, 3]
    assert [ids(page(images, number, 4)) for number in (1, 2)] == [["a1", "b2", "c3", "d4"], ["e5", "f6"]]
    assert page(images.iloc[:0], 1, 20).empty  # an empty result is one empty page


@pytest.mark.parametrize(
    ("number", "size", "named"),
    [(0, 20, "number"), (3, 4, "number"), (1, 0, "size"), (1, True, "size"), (1, 2.5, "size"), ("1", 20, "number")],
)
def test_bad_page_arguments_are_config_errors(images: pd.DataFrame, number: Any, size: Any, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        page(images, number, size)


def test_bad_page_count_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="rows"):
        page_count(-1, 20)
    with pytest.raises(ConfigError, match="size"):
        page_count(10, -20)


# --- an estate's frame: region and project ---------------------------------------------------------

SUB_PROJECT = "p0000000000000000000000000000002"
SOUTH_PROJECT = "p0000000000000000000000000000003"


@pytest.fixture()
def estate_images(images: pd.DataFrame) -> pd.DataFrame:
    """``images`` as an estate lists them: a1..c3 in cn-north-4 (c3 in its sub-project), d4..f6 in ap-southeast-1."""
    scope = [("cn-north-4", PROJECT, "cn-north-4")] * 2 + [("cn-north-4", SUB_PROJECT, "cn-north-4_dev")]
    scope += [("ap-southeast-1", SOUTH_PROJECT, "ap-southeast-1")] * 3
    columns = {name: pd.array([s[i] for s in scope], dtype="string")
               for i, name in enumerate(("region", "project_id", "project_name"))}  # fmt: skip
    return pd.concat([pd.DataFrame(columns, index=images.index), images], axis=1)


def test_regions_and_projects_of_an_estate_frame(estate_images: pd.DataFrame, images: pd.DataFrame) -> None:
    assert is_estate(estate_images) and not is_estate(images)
    assert regions_in(estate_images) == ["ap-southeast-1", "cn-north-4"] and regions_in(images) == []
    assert projects_in(estate_images) == ["ap-southeast-1", "cn-north-4", "cn-north-4_dev"]
    assert projects_in(estate_images, "cn-north-4") == ["cn-north-4", "cn-north-4_dev"]
    assert projects_in(estate_images, "eu-west-101") == []
    assert scope_note(estate_images) == "2 regions, 3 projects"
    assert scope_note(estate_images.iloc[:1]) == "1 region, 1 project" and scope_note(images) == ""


def test_region_and_project_filters_combine_with_search_and_the_others(estate_images: pd.DataFrame) -> None:
    assert ids(filter_images(estate_images, regions=["cn-north-4"])) == ["a1", "b2", "c3"]
    assert ids(filter_images(estate_images, projects=["cn-north-4_dev", "ap-southeast-1"])) == ["c3", "d4", "e5", "f6"]
    assert ids(filter_images(estate_images, regions=["cn-north-4"], projects=["ap-southeast-1"])) == []
    assert ids(filter_images(estate_images, regions=["ap-southeast-1"], statuses=["active"])) == ["d4", "f6"]
    assert ids(filter_images(estate_images, text="southeast web")) == ["e5"]  # region, then name
    assert ids(filter_images(estate_images, text="_DEV")) == ["c3"]  # project name, any case
    assert ids(filter_images(estate_images, text="ubuntu", regions=["cn-north-4"])) == ["a1"]


def test_region_and_project_filters_need_an_estate_frame(images: pd.DataFrame) -> None:
    assert ids(filter_images(images, regions=(), projects=())) == ids(images)
    with pytest.raises(ConfigError, match="regions filter the estate's frame"):
        filter_images(images, regions=["cn-north-4"])
    with pytest.raises(ConfigError, match="projects must be a list of strings"):
        filter_images(images, projects="cn-north-4")


def test_an_estate_frame_is_judged_per_region_and_project(estate_images: pd.DataFrame) -> None:
    owners = [PROJECT, PROJECT, SUB_PROJECT, SOUTH_PROJECT, SOUTH_PROJECT, PROJECT]
    frame = estate_images.assign(owner=pd.array(owners, dtype="string"))
    # b2: saving; e5: 1 TiB; f6: of cn-north-4's project, listed in ap-southeast-1's
    assert exportability(frame).tolist() == [True, False, True, True, False, False]
    assert exportability(frame.iloc[::-1]).tolist() == [False, False, True, True, False, True]
    assert exportability(frame, region="cn-north-4").tolist() == [True, False, True, True, False, True]  # one region


# --- exportability ----------------------------------------------------------------------------------


@dataclass
class StubSettings:
    is_simulator: bool


@dataclass
class StubClient:
    """What exportability reads of a client; any lookup would fail the test."""

    is_simulator: bool = False
    region: str = "cn-north-4"
    project_id: str = PROJECT

    @property
    def settings(self) -> StubSettings:
        return StubSettings(self.is_simulator)

    def bucket(self, name: str) -> Any:
        raise AssertionError(f"looked up bucket {name}")

    def object_exists(self, bucket: str, key: str) -> bool:
        raise AssertionError(f"looked up object {bucket}/{key}")


CASES: dict[str, tuple[dict[str, Any], bool]] = {
    "plain": ({}, True),
    "gold": ({"__imagetype": "gold", "visibility": "public", "owner": OTHER}, False),
    "shared": ({"__imagetype": "shared", "visibility": "shared", "owner": OTHER}, False),
    "market": ({"__imagetype": "market", "__productcode": "kg1"}, False),
    "koogallery": ({"__productcode": "kg2"}, False),
    "saving": ({"status": "saving"}, False),
    "whole": ({"__whole_image": True}, False),
    "iso": ({"virtual_env_type": "IsoImage"}, False),
    "windows-derived": ({"__platform": "Windows", "__originalimagename": "parent"}, False),
    "centos-derived": ({"__originalimagename": "parent"}, True),
    "one-tib": ({"__image_size": str(SIZE_LIMIT)}, False),
    "big": ({"__image_size": str(SIZE_LIMIT - 1)}, True),  # through fast export
    "big-encrypted": ({"__image_size": str(NORMAL_EXPORT_LIMIT + 1), "__system__cmkid": "k"}, False),
    "small-encrypted": ({"__image_size": str(NORMAL_EXPORT_LIMIT), "__system__cmkid": "k"}, True),
}


def test_exportability_judges_the_image_rules_only() -> None:
    frame = images_frame([record(name, **fields) for name, (fields, _) in CASES.items()])
    marks = exportability(frame, client=StubClient())
    assert marks.dtype == bool and marks.name == "exportable"
    assert dict(zip(frame["id"], marks, strict=True)) == {name: ok for name, (_, ok) in CASES.items()}


def test_exportability_is_aligned_with_the_frame_index() -> None:
    frame = images_frame([record(name, **fields) for name, (fields, _) in CASES.items()]).iloc[::-2]
    marks = exportability(frame, client=StubClient())
    assert marks.index.equals(frame.index)
    assert marks.tolist() == [CASES[image_id][1] for image_id in frame["id"]]


def test_an_image_shared_with_you_is_not_exportable_with_or_without_a_client() -> None:
    """Its own record says so (``__imagetype`` shared): no client is needed to know the owner is someone else."""
    frame = images_frame([record("shared", __imagetype="shared", visibility="shared", owner=OTHER)])
    assert exportability(frame).tolist() == [False]
    assert exportability(frame, client=StubClient()).tolist() == [False]


def test_without_a_client_a_private_image_of_another_owner_is_not_judged_by_owner() -> None:
    frame = images_frame([record("theirs", owner=OTHER)])
    assert exportability(frame).tolist() == [True]
    assert exportability(frame, client=StubClient()).tolist() == [False]


def test_exportability_uses_the_profile_the_client_gets() -> None:
    """Ubuntu-derived images: refused by the simulator and strict regions, only a warning elsewhere."""
    frame = images_frame([record("u", __platform="Ubuntu", __originalimagename="parent")])
    assert exportability(frame, client=StubClient(is_simulator=True)).tolist() == [False]
    assert exportability(frame, client=StubClient(region="eu-west-0")).tolist() == [False]
    assert exportability(frame, client=StubClient()).tolist() == [True]
    assert exportability(frame, client=StubClient(), region="eu-west-0").tolist() == [False]


def test_exportability_needs_the_rule_columns() -> None:
    with pytest.raises(ConfigError, match="lacks column"):
        exportability(pd.DataFrame({"id": ["x"]}))


def test_exportability_agrees_with_preflight_summary_on_the_simulator(sim_client: ImsClient, sent: Any) -> None:
    frame = sim_client.images()
    sent.clear()
    marks = exportability(frame, client=sim_client)
    assert len(sent) == 0  # no bucket, object or job lookups
    summary = preflight_summary(frame, bucket_url="ims-exports-cn-north-4:check.qcow2", file_format="qcow2",
                                client=sim_client)  # fmt: skip
    assert marks.tolist() == summary["recommended"].notna().tolist()
    assert 0 < marks.sum() < len(frame)
    assert not marks[frame["owner"] != sim_client.project_id].any()  # gold and shared images
    assert marks[frame["size_bytes"] > NORMAL_EXPORT_LIMIT].any()  # fast export counts


# --- speed ------------------------------------------------------------------------------------------


def test_filtering_ten_thousand_images_is_fast(sim_client: ImsClient) -> None:
    small = sim_client.images()
    frame = pd.concat([small] * 50, ignore_index=True)
    frame["id"] = pd.array([f"{n:05d}-{i}" for n, i in enumerate(frame["id"])], dtype="string")
    marks = pd.Series(frame.index % 3 == 0, index=frame.index)
    arguments = {"text": "Linux 64bit 0", "platforms": ["CentOS", "Debian", "Ubuntu"], "statuses": ["active"],
                 "size_bands": ["up to 16 GB", "16–128 GB"], "exportable": marks, "exportable_only": True}  # fmt: skip
    filter_images(frame, **arguments)  # warm up
    started = time.perf_counter()
    found = filter_images(frame, **arguments)
    elapsed = time.perf_counter() - started
    print(f"filter_images on {len(frame):,} rows: {elapsed * 1000:.1f} ms, {len(found)} matching")
    assert 0 < len(found) < len(frame)
    assert elapsed < 1.0
