"""The picker and the monitor on an estate: a real multi-region simulator's frame, ledger rows of two regions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

import ims_nb
from ims_nb import selection
from ims_nb.errors import ConfigError
from ims_nb.estate import Estate
from ims_nb.exports.identity import identity_of
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.watch import Progress
from ims_nb.sim import Simulator
from ims_nb.vocab import State, Target
from ims_nb.widgets.monitor import JobMonitor, by_region, region_of
from ims_nb.widgets.picker import CssClass, EstateCssClass, ImagePicker

pytestmark = pytest.mark.usefixtures("clean_env")

REGIONS = ("cn-north-4", "ap-southeast-1", "ap-southeast-3")
HOME, SUB = "cn-north-4", "cn-north-4_dev"


@pytest.fixture(scope="module")
def estate() -> Iterator[Estate]:
    with (
        Simulator(regions=REGIONS, seed=0, images=60, manual_clock=True) as simulator,
        ims_nb.connect_estate(simulator=simulator) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def listed(estate: Estate) -> pd.DataFrame:
    return estate.images()


@pytest.fixture()
def frame(listed: pd.DataFrame) -> pd.DataFrame:
    """The estate's frame, one row per image id: a sub-project lists its region's public and shared images too."""
    return listed.drop_duplicates("id", ignore_index=True)


@pytest.fixture()
def picker(frame: pd.DataFrame) -> ImagePicker:
    return ImagePicker(images=frame)


def choices(dropdown: Any) -> list[str]:
    return [label for label, _ in dropdown.options]


def shown(picker: ImagePicker, column: str) -> set[str]:
    return set(picker.matching[column])


# --- the estate's ids -------------------------------------------------------------------------------


def test_a_sub_project_repeats_its_regions_shared_images_and_the_picker_shows_each_once(
    listed: pd.DataFrame,
) -> None:
    repeated = listed[listed["id"].duplicated(keep=False)]
    assert set(repeated["region"]) == {HOME} and set(repeated["project_name"]) == {HOME, SUB}
    assert set(repeated["visibility"]) <= {"public", "shared"}  # private images are listed once
    assert listed.drop_duplicates(["region", "id"])["id"].is_unique
    picker = ImagePicker(images=listed)  # each public or shared image once, every private image of every project
    assert len(picker.frame) == listed["id"].nunique()
    assert picker.frame["id"].is_unique and set(picker.frame["project_name"]) == set(listed["project_name"])
    private = listed[listed["visibility"] == "private"]
    assert set(private["id"]) <= set(picker.frame["id"])
    with pytest.raises(ConfigError, match="one row per image id"):
        ImagePicker(images=pd.concat([private, private.head(1)]))  # a private image twice is a broken frame


# --- the picker: region and project filters --------------------------------------------------------


def test_region_and_project_dropdowns_start_at_all(picker: ImagePicker, frame: pd.DataFrame) -> None:
    assert picker._filters.children[:2] == (picker._region, picker._project)
    assert EstateCssClass.REGIONS.value in picker._region._dom_classes
    assert EstateCssClass.PROJECTS.value in picker._project._dom_classes
    assert choices(picker._region) == ["all regions", *sorted(REGIONS)]
    assert choices(picker._project) == ["all projects", *sorted({*REGIONS, SUB})]
    assert len(picker.matching) == len(frame)
    assert picker._summary.value == "showing 3 regions, 4 projects · nothing picked"
    assert "region, project" in picker._search.placeholder


def test_the_project_list_follows_the_region(picker: ImagePicker, frame: pd.DataFrame) -> None:
    picker._region.value = HOME
    assert choices(picker._project) == ["all projects", HOME, SUB]
    assert shown(picker, "region") == {HOME} and len(picker.matching) == int((frame["region"] == HOME).sum())
    assert picker._summary.value == "showing 1 region, 2 projects · nothing picked"

    picker._project.value = SUB
    assert shown(picker, "project_name") == {SUB}
    assert picker._summary.value == "showing 1 region, 1 project · nothing picked"
    assert all(row.description.split(" · ")[4] == SUB for row in picker._rows.children)

    picker._region.value = ""  # all regions: the chosen project stays
    assert picker._project.value == SUB and shown(picker, "project_name") == {SUB}
    assert len(choices(picker._project)) == 5

    picker._region.value = "ap-southeast-1"  # a project of another region: back to all of this one's
    assert choices(picker._project) == ["all projects", "ap-southeast-1"] and picker._project.value == ""
    assert shown(picker, "region") == {"ap-southeast-1"}
    assert picker._paging.value.endswith(f"· {int((frame['region'] == 'ap-southeast-1').sum())} matching")


def test_search_matches_region_and_project_and_combines_with_the_filters(
    picker: ImagePicker, frame: pd.DataFrame
) -> None:
    picker.search("southeast")
    assert shown(picker, "region") == {"ap-southeast-1", "ap-southeast-3"}
    assert picker._summary.value == "showing 2 regions, 2 projects · nothing picked"

    picker._region.value = "ap-southeast-3"
    picker._statuses.value = ("active",)
    expected = frame[(frame["region"] == "ap-southeast-3") & (frame["status"] == "active")]
    assert picker.matching["id"].tolist() == expected["id"].tolist()

    picker._region.value = ""
    picker.search(f"{SUB} ubuntu")
    assert shown(picker, "project_name") <= {SUB} and (picker.matching["platform"] == "Ubuntu").all()


def test_picks_are_by_image_id_across_regions(picker: ImagePicker) -> None:
    picker._region.value = "ap-southeast-1"
    picker._exportable_only.value = True
    picker._pick_all.click()
    picker._region.value = "ap-southeast-3"
    picker._pick_all.click()
    assert set(picker.selected["region"]) == {"ap-southeast-1", "ap-southeast-3"}
    assert picker._summary.value.startswith(f"showing 1 region, 1 project · {len(picker.picked)} picked · ")


def test_each_row_is_judged_as_its_own_project(estate: Estate, frame: pd.DataFrame) -> None:
    marks = selection.exportability(frame)
    foreign = (frame["owner"] != frame["project_id"]).to_numpy()
    assert not marks[foreign].any()
    for project in (HOME, SUB, "ap-southeast-3"):
        assert marks[(frame["project_name"] == project).to_numpy()].any()
    home = next(p for p in estate.projects if p.name == HOME)  # judged as the home project, the others' own fail
    as_home = selection.exportability(frame.drop(columns=["region", "project_id", "project_name"]),
                                      client=SimpleNamespace(region=HOME, project_id=home.id))  # fmt: skip
    assert as_home.groupby(frame["project_name"]).sum()[[SUB, "ap-southeast-3"]].tolist() == [0, 0]
    assert (as_home[frame["project_name"] == HOME] == marks[frame["project_name"] == HOME]).all()


def test_a_single_region_frame_has_no_region_or_project_filter(frame: pd.DataFrame) -> None:
    single = frame[frame["region"] == HOME].drop(columns=["region", "project_id", "project_name"])
    picker = ImagePicker(images=single)
    assert len(picker._filters.children) == 4 and picker._summary.value == "nothing picked"
    assert picker._search.placeholder == "search name, id, platform, OS"
    assert CssClass.PLATFORMS.value in picker._filters.children[0]._dom_classes


# --- the monitor: a heading per region -------------------------------------------------------------


@pytest.fixture()
def two_regions(estate: Estate, frame: pd.DataFrame, tmp_path: Path) -> Iterator[tuple[Ledger, list[int]]]:
    """Ledger rows of two regions, claimed as each region's client (region, endpoint and project recorded)."""
    states = {HOME: [State.RUNNING, State.VERIFIED, State.VERIFIED], "ap-southeast-1": [State.FAILED]}
    ids = []
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        for region, wanted in states.items():
            project = next(p for p in estate.projects if p.name == region)
            bound = ledger.bound_to(identity_of(estate.client_for(region, project.id)))
            images = frame[(frame["project_name"] == region) & (frame["visibility"] == "private")]
            for state, (_, image) in zip(wanted, images.iterrows(), strict=False):
                row_id = bound.claim(image_id=image["id"], target=Target(f"backup-{region}", f"{image['id']}.qcow2"),
                                     image_name=image["name"], file_format="qcow2", quick=False,
                                     size_bytes=int(image["size_bytes"]), region=region)  # fmt: skip
                assert row_id is not None
                bound.update(row_id, state=state)
                ids.append(row_id)
        yield ledger, ids


def headings(monitor: JobMonitor) -> list[str]:
    return [group.children[0].value for group in monitor.children[1].children]


def test_rows_of_two_regions_are_grouped_under_a_heading_each(
    estate: Estate, two_regions: tuple[Ledger, list[int]]
) -> None:
    ledger, ids = two_regions
    home = next(p for p in estate.projects if p.name == HOME)
    monitor = JobMonitor(estate.client_for(HOME, home.id), ledger).follow(ids)
    groups = monitor.children[1].children
    assert [len(g.children) for g in groups] == [4, 2] and all("ims-nb-monitor-group" in g._dom_classes for g in groups)
    assert headings(monitor) == [f"<b>{HOME}</b> · 3 exports: 1 running, 2 verified",
                                 "<b>ap-southeast-1</b> · 1 export: 1 failed"]  # fmt: skip
    assert repr(monitor) == "JobMonitor(4 exports: 1 running, 2 verified, 1 failed)"

    ledger.update(ids[0], state=State.VERIFIED, process_percent=100.0)
    monitor._on_progress(Progress(ids[0], None, None, State.VERIFIED.value, 100.0, None, False))
    assert headings(monitor)[0] == f"<b>{HOME}</b> · 3 exports: 3 verified"

    monitor.follow(ids[:3])  # one region again: the bars as before, no heading
    assert [b._dom_classes for b in monitor.children[1].children] == [("ims-nb-monitor-row",)] * 3


def test_the_region_of_a_row_without_one_comes_from_its_endpoint() -> None:
    assert region_of({"region": "cn-north-4", "endpoint": "https://ims.ap-southeast-1.myhuaweicloud.com"}) == (
        "cn-north-4"
    )
    assert region_of({"region": None, "endpoint": "https://ims.ap-southeast-1.myhuaweicloud.com"}) == "ap-southeast-1"
    assert region_of({"endpoint": "http://127.0.0.1:5001"}) == "http://127.0.0.1:5001"
    assert region_of({"region": None, "endpoint": None}) == "?"
    assert by_region({3: "b", 1: "a", 2: "b"}) == {"b": [3, 2], "a": [1]}
