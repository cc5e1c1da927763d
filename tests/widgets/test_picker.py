"""``ImagePicker`` over the simulator's images: set widget values, click buttons, assert on ``picked`` and the view."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pytest

from ims_nb import ImsClient, selection
from ims_nb.errors import ConfigError
from ims_nb.widgets.log import LogPanel
from ims_nb.widgets.picker import CssClass, ImagePicker

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture()
def frame(sim_client: ImsClient) -> pd.DataFrame:
    return sim_client.images()


@pytest.fixture()
def picker(sim_client: ImsClient) -> ImagePicker:
    return ImagePicker(sim_client)


def rows(picker: ImagePicker) -> list[Any]:
    return list(picker._rows.children)


def shown_ids(picker: ImagePicker) -> list[str]:
    return list(picker._row_ids)


def descendants(widget: Any) -> list[Any]:
    found = [widget]
    for child in getattr(widget, "children", ()):
        found.extend(descendants(child))
    return found


def big_frame(frame: pd.DataFrame, copies: int = 50) -> pd.DataFrame:
    """``copies`` of the simulator's frame, each image with a unique id and a numbered name."""
    big = pd.concat([frame] * copies, ignore_index=True)
    big["id"] = pd.array([f"{n:05d}-{i}" for n, i in enumerate(big["id"])], dtype="string")
    big["name"] = big["name"] + pd.Series([f"-copy{n // len(frame)}" for n in range(len(big))], dtype="string")
    return big


# --- construction ---------------------------------------------------------------------------------


def test_the_first_page_of_all_images(picker: ImagePicker, frame: pd.DataFrame) -> None:
    assert repr(picker) == "ImagePicker(200 images, 20 shown, 0 picked)"
    assert picker._paging.value == "page 1 of 10 · 200 matching"
    assert shown_ids(picker) == frame["id"].tolist()[:20]
    assert picker._previous.disabled and not picker._next.disabled
    assert picker._summary.value == "nothing picked" and picker.picked == []
    pd.testing.assert_frame_equal(picker.frame, frame)
    pd.testing.assert_frame_equal(picker.matching, frame)


def test_rows_show_name_platform_size_and_status(picker: ImagePicker, frame: pd.DataFrame) -> None:
    first = frame.iloc[0]
    label = rows(picker)[0].description
    assert label.startswith(f"{first['name']} · {first['platform']} · {first['size_gb']:.1f} GB · {first['status']}")
    too_big = frame.index[frame["size_bytes"] >= 1024**4][0]
    picker.search(frame.loc[too_big, "id"])
    assert rows(picker)[0].description.endswith("· not exportable")


def test_the_client_is_asked_for_images_once_and_nothing_else(sim_client: ImsClient, sent: Any) -> None:
    calls: list[int] = []
    listing = sim_client.images

    def images(**arguments: Any) -> pd.DataFrame:
        calls.append(1)
        return listing(**arguments)

    sim_client.images = images  # type: ignore[method-assign]
    sent.clear()
    ImagePicker(sim_client)
    assert calls == [1]
    assert {request.url.path for request in sent.requests} == {"/v2/cloudimages"}


def test_a_frame_can_be_given_instead(frame: pd.DataFrame) -> None:
    picker = ImagePicker(images=frame.iloc[:45], page_size=10)
    assert repr(picker) == "ImagePicker(45 images, 10 shown, 0 picked)"
    assert picker._paging.value == "page 1 of 5 · 45 matching"


@pytest.mark.parametrize(
    ("arguments", "match"),
    [({}, "client or images"), ({"page_size": 0}, "size"), ({"images": "frame"}, "images frame")],
)
def test_bad_arguments_are_config_errors(frame: pd.DataFrame, arguments: dict[str, Any], match: str) -> None:
    if "page_size" in arguments:
        arguments["images"] = frame
    with pytest.raises(ConfigError, match=match):
        ImagePicker(**arguments)


def test_duplicate_ids_are_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="one row per image id"):
        ImagePicker(images=pd.concat([frame, frame.iloc[:1]], ignore_index=True))


def test_structure_log_last_css_classes_and_no_synced_picked(picker: ImagePicker) -> None:
    assert isinstance(picker.log_panel, LogPanel) and picker.children[-1] is picker.log_panel
    assert "picked" not in picker.keys  # a Python-side trait, not synced to the browser
    classes = {css for widget in descendants(picker) for css in widget._dom_classes}
    assert {css.value for css in CssClass} <= classes
    assert all(CssClass.ROW.value in row._dom_classes for row in rows(picker))
    assert CssClass.SEARCH.value in picker._search._dom_classes and picker._search.continuous_update


# --- search, filters, paging ----------------------------------------------------------------------


def test_typing_in_the_search_box_filters(picker: ImagePicker, frame: pd.DataFrame) -> None:
    picker._search.value = "UBUNTU 20.04"
    expected = selection.filter_images(frame, text="ubuntu 20.04")
    assert 0 < len(expected) < 20
    assert shown_ids(picker) == expected["id"].tolist()
    assert picker._paging.value == f"page 1 of 1 · {len(expected)} matching"
    assert repr(picker) == f"ImagePicker(200 images, {len(expected)} shown, 0 picked)"
    picker.search("no such image")
    assert rows(picker) == [] and picker._paging.value == "page 1 of 1 · 0 matching"
    assert picker._previous.disabled and picker._next.disabled


def test_filters_narrow_the_result(picker: ImagePicker, frame: pd.DataFrame) -> None:
    assert set(picker._platforms.options) == set(frame["platform"].dropna())
    assert set(picker._statuses.options) == set(frame["status"].dropna())
    assert list(picker._sizes.options) == list(selection.SIZE_BANDS)
    picker._platforms.value = ("Windows", "SUSE")
    assert set(picker.matching["platform"]) == {"Windows", "SUSE"}
    picker._statuses.value = ("active",)
    picker._sizes.value = ("16–128 GB",)
    expected = selection.filter_images(frame, platforms=["Windows", "SUSE"], statuses=["active"],
                                       size_bands=["16–128 GB"])  # fmt: skip
    assert picker.matching["id"].tolist() == expected["id"].tolist()


def test_exportable_only(picker: ImagePicker, sim_client: ImsClient, frame: pd.DataFrame) -> None:
    picker._exportable_only.value = True
    marks = selection.exportability(frame, client=sim_client)
    assert picker.matching["id"].tolist() == frame.loc[marks, "id"].tolist()
    assert not any(row.description.endswith("not exportable") for row in rows(picker))


def test_paging_buttons(picker: ImagePicker, frame: pd.DataFrame) -> None:
    picker._next.click()
    assert picker._paging.value == "page 2 of 10 · 200 matching"
    assert shown_ids(picker) == frame["id"].tolist()[20:40] and not picker._previous.disabled
    for _ in range(12):  # past the last page: stays there
        picker._next.click()
    assert picker._paging.value == "page 10 of 10 · 200 matching" and picker._next.disabled
    picker._previous.click()
    assert picker._paging.value == "page 9 of 10 · 200 matching"
    picker.search("centos")  # a new search starts on page 1
    assert picker._paging.value.startswith("page 1 of ")


def test_the_last_page_may_be_short(frame: pd.DataFrame) -> None:
    picker = ImagePicker(images=frame.iloc[:45])
    picker._next.click()
    picker._next.click()
    assert len(rows(picker)) == 5 and picker._paging.value == "page 3 of 3 · 45 matching"


# --- picking --------------------------------------------------------------------------------------


def test_row_checkboxes_pick_and_unpick_in_order(picker: ImagePicker, frame: pd.DataFrame) -> None:
    first, second, third = rows(picker)[:3]
    third.value = True
    first.value = True
    ids = frame["id"].tolist()
    assert picker.picked == [ids[2], ids[0]]
    assert picker.selected["id"].tolist() == [ids[2], ids[0]]
    total = frame["size_gb"].iloc[[2, 0]].sum()
    assert picker._summary.value == f"2 picked · {total:.1f} GB in total"
    third.value = False
    assert picker.picked == [ids[0]] and not second.value
    assert repr(picker) == "ImagePicker(200 images, 20 shown, 1 picked)"


def test_picked_survives_paging_and_search(picker: ImagePicker, frame: pd.DataFrame) -> None:
    rows(picker)[0].value = True
    picker._next.click()
    assert not any(row.value for row in rows(picker))
    picker._previous.click()
    assert rows(picker)[0].value and picker.picked == [frame["id"].iloc[0]]


def test_setting_picked_updates_the_view(picker: ImagePicker, frame: pd.DataFrame) -> None:
    ids = frame["id"].tolist()
    picker.picked = [ids[5], ids[1], ids[5]]  # a repeat keeps its first place
    assert picker.picked == [ids[5], ids[1]]
    assert [row.value for row in rows(picker)[:6]] == [False, True, False, False, False, True]
    assert picker._summary.value.startswith("2 picked")
    picker.pick(ids[1], ids[7])
    picker.unpick(ids[5], "not-picked")
    assert picker.picked == [ids[1], ids[7]]
    with pytest.raises(ConfigError, match="unknown image id"):
        picker.picked = ["no-such-id"]
    assert picker.picked == [ids[1], ids[7]]


def test_pick_all_matching_and_clear(picker: ImagePicker, sim_client: ImsClient, frame: pd.DataFrame) -> None:
    seen: list[list[str]] = []
    picker.observe(lambda change: seen.append(change["new"]), names="picked")
    picker.pick(frame["id"].iloc[0])
    picker._platforms.value = ("Windows",)
    picker._pick_all.click()
    windows = frame.loc[frame["platform"] == "Windows", "id"].tolist()
    assert picker.picked == [frame["id"].iloc[0], *[i for i in windows if i != frame["id"].iloc[0]]]
    assert all(row.value for row in rows(picker))
    picked_all = len(picker.picked)
    blocked = (~selection.exportability(frame, client=sim_client)[frame["id"].isin(picker.picked)]).sum()
    assert picker._summary.value.startswith(f"{len(picker.picked)} picked ({blocked} not exportable)")
    picker._clear.click()
    assert picker.picked == [] and not any(row.value for row in rows(picker))
    assert [len(ids) for ids in seen] == [1, picked_all, 0]  # observers see each change once


# --- errors, scale --------------------------------------------------------------------------------


def test_a_failing_callback_lands_in_the_log(picker: ImagePicker, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> pd.DataFrame:
        raise RuntimeError("filter broke")

    monkeypatch.setattr(selection, "filter_images", broken)
    before = picker.matching
    picker._search.value = "ubuntu"  # nothing raises
    picker._exportable_only.value = True
    assert picker.log_panel.errors[0].startswith("search failed: unexpected RuntimeError: filter broke")
    assert picker.log_panel.errors[1].startswith("filter failed: unexpected RuntimeError: filter broke")
    assert picker.matching is before and picker.log_panel.layout.display == "block"


def test_a_failing_button_lands_in_the_log(picker: ImagePicker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "page", lambda *args: (_ for _ in ()).throw(ConfigError("no page")))
    picker._next.click()
    assert picker.log_panel.errors == ["next page failed: no page"]
    assert picker._paging.value == "page 1 of 10 · 200 matching" and picker._page_number == 1


def test_ten_thousand_images_show_one_page_and_search_quickly(frame: pd.DataFrame) -> None:
    big = big_frame(frame)
    started = time.perf_counter()
    picker = ImagePicker(images=big)
    built = time.perf_counter() - started
    assert repr(picker) == "ImagePicker(10000 images, 20 shown, 0 picked)"
    assert picker._paging.value == "page 1 of 500 · 10000 matching"
    assert max(len(getattr(widget, "options", ())) for widget in descendants(picker)) < 100  # no 10,000 options
    pool = {id(row) for row in picker._row_pool}
    timings = []
    for text in ("c", "ce", "cen", "centos", "centos 8", "centos 8 copy4"):
        started = time.perf_counter()
        picker._search.value = text
        timings.append(time.perf_counter() - started)
        assert len(rows(picker)) <= 20 and {id(row) for row in rows(picker)} <= pool  # row widgets are reused
    print(f"ImagePicker on {len(big):,} images: built in {built * 1000:.0f} ms, "
          f"slowest keystroke {max(timings) * 1000:.1f} ms")  # fmt: skip
    assert 0 < len(picker.matching) < len(big) and max(timings) < 1.0
    assert picker.log_panel.errors == []
