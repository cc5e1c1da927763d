"""What the image picker shows, as pure functions: filter choices, row labels, the paging and summary lines."""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb import selection

#: Shown for a name, platform, size, status or project the frame does not have.
UNKNOWN: Final = "?"


def choices(values: pd.Series) -> list[str]:
    """A filter's options: the distinct values of a column, as sorted strings, without the missing ones."""
    return sorted(str(value) for value in values.dropna().unique())


def row_labels(shown: pd.DataFrame, exportable: pd.Series, *, estate: bool) -> list[str]:
    """One checkbox label per shown row: name, platform, size, status, the project (of an estate's frame), and
    whether it cannot be exported (``exportable``: a bool per frame row, by label)."""
    sizes = [UNKNOWN if np.isnan(gb) else f"{gb:.1f} GB" for gb in shown["size_gb"].to_numpy(dtype=float)]
    ok = exportable.reindex(shown.index, fill_value=False).to_numpy(dtype=bool)
    projects = shown["project_name"].fillna(UNKNOWN) if estate else [""] * len(shown)
    return [
        f"{name} · {platform} · {size} · {status}{f' · {project}' if project else ''}"
        f"{'' if fine else ' · not exportable'}"
        for name, platform, size, status, project, fine in zip(
            shown["name"].fillna(UNKNOWN), shown["platform"].fillna(UNKNOWN), sizes,
            shown["status"].fillna(UNKNOWN), projects, ok, strict=True,
        )
    ]  # fmt: skip


def paging_text(number: int, pages: int, matching: int) -> str:
    """``page 2 of 5 · 93 matching``."""
    return f"page {number} of {pages} · {matching} matching"


def summary_text(matching: pd.DataFrame, chosen: pd.DataFrame, exportable: pd.Series, *, estate: bool) -> str:
    """What is picked: how many, how many cannot be exported, their size in total; an estate's frame first says
    how many regions and projects ``matching`` shows."""
    shown = f"showing {selection.scope_note(matching)} · " if estate else ""
    if chosen.empty:
        return f"{shown}nothing picked"
    total = float(np.nansum(chosen["size_gb"].to_numpy(dtype=float)))
    blocked = int((~exportable.reindex(chosen.index, fill_value=False).to_numpy(dtype=bool)).sum())
    note = f" ({blocked} not exportable)" if blocked else ""
    return f"{shown}{len(chosen)} picked{note} · {total:.1f} GB in total"
