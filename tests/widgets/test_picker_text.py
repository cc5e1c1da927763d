"""``ims_nb.widgets.picker_text``: what the image picker shows of the images frame, without a widget."""

from __future__ import annotations

import pandas as pd

from ims_nb.widgets.picker_text import choices, paging_text, row_labels, summary_text


def frame() -> pd.DataFrame:
    return pd.DataFrame({"id": ["a", "b"], "name": ["web", "db"], "platform": ["Ubuntu", None],
                         "status": ["active", "queued"], "size_gb": [2.0, float("nan")],
                         "project_name": ["home", None]})  # fmt: skip


def test_choices_are_the_sorted_distinct_values_without_the_missing_ones() -> None:
    assert choices(pd.Series(["b", None, "a", "b"], dtype="string")) == ["a", "b"]


def test_a_row_label_says_size_and_whether_it_cannot_be_exported() -> None:
    images = frame()
    exportable = pd.Series([True, False], index=images.index)
    labels = row_labels(images, exportable, estate=False)
    assert labels == ["web · Ubuntu · 2.0 GB · active", "db · ? · ? · queued · not exportable"]
    assert row_labels(images, exportable, estate=True)[0] == "web · Ubuntu · 2.0 GB · active · home"


def test_the_paging_line() -> None:
    assert paging_text(2, 5, 93) == "page 2 of 5 · 93 matching"


def test_the_summary_counts_what_is_picked_and_what_cannot_be_exported() -> None:
    images = frame()
    exportable = pd.Series([True, False], index=images.index)
    assert summary_text(images, images.iloc[:0], exportable, estate=False) == "nothing picked"
    assert summary_text(images, images, exportable, estate=False) == "2 picked (1 not exportable) · 2.0 GB in total"
