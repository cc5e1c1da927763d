"""Choosing images from the images frame: size bands, exportability, search and filters (region, project), pages."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.protocol import ClientLike
from ims_nb.errors import ConfigError
from ims_nb.preflight import preflight_summary, profile_of
from ims_nb.vocab import NORMAL_EXPORT_LIMIT, SCOPE_COLUMNS, SIZE_LIMIT, GiB

__all__ = ["SEARCH_COLUMNS", "SIZE_BANDS", "exportability", "filter_images", "is_estate", "page", "page_count",
           "projects_in", "regions_in", "scope_note"]  # fmt: skip

#: Size band label -> (low, high] in bytes, in order. Sizes are whole bytes, so "128 GB–1 TB" ends one byte
#: short of 1 TiB: an image of exactly 1 TiB is refused (``size-limit``), one of exactly 128 GiB exports normally.
SIZE_BANDS: Final[Mapping[str, tuple[float, float]]] = MappingProxyType(
    {
        "up to 16 GB": (-math.inf, 16 * GiB),
        "16–128 GB": (16 * GiB, NORMAL_EXPORT_LIMIT),
        "128 GB–1 TB": (NORMAL_EXPORT_LIMIT, SIZE_LIMIT - 1),  # fast export only
        "1 TB and over": (SIZE_LIMIT - 1, math.inf),  # never exportable
    }
)
#: The columns a text search looks in (an estate frame's region and project name too).
SEARCH_COLUMNS: Final = ("name", "id", "platform", "os_version")
_REGION, _PROJECT_ID, _PROJECT = SCOPE_COLUMNS
#: A bucket URL every bucket rule accepts; exportability never looks it up.
_PLACEHOLDER_BUCKET_URL: Final = "ims-nb-placeholder:exportability-check.qcow2"
_PLACEHOLDER_FORMAT: Final = "qcow2"


@dataclass(frozen=True)
class _UnknownBucket:
    """A bucket lookup answered offline: existence, region and class unknown, so no bucket rule fires."""

    name: str
    exists: bool | None = None
    region: str | None = None
    storage_class: str | None = None


@dataclass(frozen=True)
class _ImageRulesOnly:
    """What preflight reads from a client (region, project id) without any lookup: nothing is sent."""

    region: str | None
    project_id: str | None

    def bucket(self, name: str) -> _UnknownBucket:
        return _UnknownBucket(name)

    def object_exists(self, bucket: str, key: str) -> bool:  # never called: no bucket is known to exist
        raise AssertionError("exportability looks nothing up")

    def image(self, image_id: str) -> dict[str, Any]:  # never called: exportability takes a frame
        raise AssertionError("exportability looks nothing up")


def exportability(images: pd.DataFrame, *, client: ClientLike | None = None, region: str | None = None) -> pd.Series:
    """Whether each image could be exported at all, judged by the image-level rules only.

    An image is exportable when ``preflight_summary`` recommends some mode for it: it is private and the
    client's project owns it, active, not a full-ECS or ISO image, not of a restricted OS origin or from
    KooGallery, and under 1 TiB; an image over 128 GiB counts through fast export unless it is encrypted.
    No request is sent: the target is a placeholder bucket that is never looked up, and only the client's
    region and project id are read. The region profile is the one the client's exports get. Each row of an
    estate's frame (``is_estate``) is judged as its own region and project, unless ``region`` is given.

    Args:
        images: the images frame (``client.images()``).
        client: the client whose project, region and simulator flag apply (None: owner and region unknown).
        region: the images' region, overriding the client's.

    Returns:
        A bool Series named ``exportable``, aligned with ``images``' index.

    Raises:
        ConfigError: the frame lacks a column the rules read, or has one of the wrong type.
    """
    if not isinstance(images, pd.DataFrame):
        raise ConfigError(f"images must be the images frame (a DataFrame), not {type(images).__name__}")
    if region is not None or not is_estate(images):
        region = region or getattr(client, "region", None)
        alone = images.drop(columns=[c for c in SCOPE_COLUMNS if c in images.columns])  # every row as ``region``'s
        marks = _exportable(alone, client, region, getattr(client, "project_id", None))
        return pd.Series(marks, index=images.index, name="exportable")
    marks = np.zeros(len(images), dtype=bool)  # an estate frame: each row judged as its own region and project
    scopes = images.groupby([_REGION, _PROJECT_ID], sort=False, dropna=False).indices
    for (scope_region, project_id), positions in scopes.items():
        marks[positions] = _exportable(images.iloc[positions], client, _text(scope_region), _text(project_id))
    return pd.Series(marks, index=images.index, name="exportable")


def _exportable(images: pd.DataFrame, client: ClientLike | None, region: str | None, project_id: str | None) -> Any:
    """The ``exportable`` marks (a bool array) of images of one region and project."""
    offline = _ImageRulesOnly(region, project_id)
    summary = preflight_summary(images, bucket_url=_PLACEHOLDER_BUCKET_URL, file_format=_PLACEHOLDER_FORMAT,
                                region=region, client=offline, profile=profile_of(client, region))  # fmt: skip
    return summary["recommended"].notna().to_numpy(dtype=bool)


def _text(value: Any) -> str | None:
    return None if pd.isna(value) else str(value)


def is_estate(images: pd.DataFrame) -> bool:
    """Whether a frame is an estate's (``connect_estate(...).images()``): it has region and project columns."""
    return all(column in images.columns for column in SCOPE_COLUMNS)


def one_row_per_image(images: Any) -> Any:
    """An estate frame with each public or shared image once: every project lists the images it can see, so a
    sub-project repeats its region's; the first row (the listing order: the parent project first) stands for it.
    A private image is listed by its own project only, so its rows are never dropped; any other frame is returned
    as it is."""
    if not isinstance(images, pd.DataFrame) or not is_estate(images) or "visibility" not in images.columns:
        return images
    repeated = images["id"].duplicated(keep="first") & (images["visibility"] != "private")
    return images[~repeated] if repeated.any() else images


def regions_in(images: pd.DataFrame) -> list[str]:
    """The regions of an estate frame's rows, sorted (none for a single-region frame)."""
    return _choices(images, _REGION)


def projects_in(images: pd.DataFrame, region: str | None = None) -> list[str]:
    """The project names of an estate frame's rows (of ``region`` only, unless None), sorted."""
    if region is None or _REGION not in images.columns:
        return _choices(images, _PROJECT)
    return _choices(images[(images[_REGION] == region).fillna(False).to_numpy(dtype=bool)], _PROJECT)


def _choices(images: pd.DataFrame, column: str) -> list[str]:
    if column not in images.columns:
        return []
    return sorted(str(value) for value in images[column].dropna().unique())


def scope_note(images: pd.DataFrame) -> str:
    """``3 regions, 4 projects``: how many an estate frame's rows span ("" for a single-region frame)."""
    if not is_estate(images):
        return ""
    regions, projects = images[_REGION].nunique(), images[[_REGION, _PROJECT_ID]].drop_duplicates().dropna().shape[0]
    return f"{regions} region{'s' if regions != 1 else ''}, {projects} project{'s' if projects != 1 else ''}"


def filter_images(
    images: pd.DataFrame,
    *,
    text: str = "",
    platforms: Iterable[str] = (),
    statuses: Iterable[str] = (),
    size_bands: Iterable[str] = (),
    exportable: pd.Series | None = None,
    exportable_only: bool = False,
    regions: Iterable[str] = (),
    projects: Iterable[str] = (),
) -> pd.DataFrame:
    """The images that match a text search and every filter (vectorised; a few ms on 10,000 rows).

    Args:
        images: the images frame.
        text: words separated by spaces; each must occur, in any case, in the name, id, platform or os_version
            (or, in an estate frame, the region or project name).
        platforms: keep these platforms (empty: all).
        statuses: keep these statuses (empty: all).
        size_bands: keep sizes in these ``SIZE_BANDS`` (empty: all, including unknown sizes).
        exportable: ``exportability(images)``, needed by ``exportable_only``.
        exportable_only: keep only the images ``exportable`` marks True (rows it lacks count as not exportable).
        regions: keep these regions of an estate frame (empty: all).
        projects: keep these project names of an estate frame (empty: all).

    Returns:
        The matching rows of ``images``, in order, with their index.

    Raises:
        ConfigError: an argument has the wrong type, a size band is unknown, ``exportable_only`` lacks
            ``exportable``, or regions or projects are asked of a frame without those columns.
    """
    if not isinstance(images, pd.DataFrame):
        raise ConfigError(f"images must be the images frame (a DataFrame), not {type(images).__name__}")
    if not isinstance(text, str):
        raise ConfigError(f"text must be a string, not {type(text).__name__}")
    keep = _words_found(images, text.split())
    for column, argument, values in (("platform", "platforms", platforms), ("status", "statuses", statuses),
                                     (_REGION, "regions", regions), (_PROJECT, "projects", projects)):  # fmt: skip
        chosen = _strings(argument, values)
        if chosen and column not in images.columns:
            raise ConfigError(f"{argument} filter the estate's frame (connect_estate(...).images()): no {column} here")
        if chosen:
            keep &= images[column].isin(chosen).fillna(False).to_numpy(dtype=bool)
    bands = _strings("size_bands", size_bands)
    if bands:
        keep &= _in_bands(images["size_bytes"], bands)
    if _exportable_only(exportable_only, exportable):
        assert exportable is not None
        keep &= exportable.reindex(images.index, fill_value=False).fillna(False).to_numpy(dtype=bool)
    return images[keep]


def _words_found(images: pd.DataFrame, words: list[str]) -> np.ndarray:
    """Rows where every word occurs in some search column, in any case (each column is lowercased once)."""
    keep = np.ones(len(images), dtype=bool)
    if not words:
        return keep
    searched = [*SEARCH_COLUMNS, *(c for c in (_REGION, _PROJECT) if c in images.columns)]
    columns = [images[column].astype("string").str.lower() for column in searched]
    for word in words:
        found = np.zeros(len(images), dtype=bool)
        for column in columns:
            found |= column.str.contains(word.lower(), regex=False).to_numpy(dtype=bool, na_value=False)
        keep &= found
    return keep


def _strings(argument: str, values: Iterable[str]) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ConfigError(f"{argument} must be a list of strings, not {values!r}")
    chosen = list(values)
    if not all(isinstance(value, str) for value in chosen):
        raise ConfigError(f"{argument} must be a list of strings, not {chosen!r}")
    return chosen


def _in_bands(size_bytes: pd.Series, bands: list[str]) -> np.ndarray:
    unknown = [band for band in bands if band not in SIZE_BANDS]
    if unknown:
        raise ConfigError(f"size_bands: unknown band(s) {unknown!r}; choose from {list(SIZE_BANDS)!r}")
    sizes = size_bytes.to_numpy(dtype="float64", na_value=np.nan)
    found = np.zeros(len(sizes), dtype=bool)
    for band in bands:
        low, high = SIZE_BANDS[band]
        found |= (sizes > low) & (sizes <= high)
    return found


def _exportable_only(exportable_only: Any, exportable: Any) -> bool:
    if not isinstance(exportable_only, bool | np.bool_):
        raise ConfigError(f"exportable_only must be True or False, not {exportable_only!r}")
    if exportable is not None and not isinstance(exportable, pd.Series):
        raise ConfigError(f"exportable must be a bool Series (exportability(images)), not {type(exportable).__name__}")
    if exportable_only and exportable is None:
        raise ConfigError("exportable_only needs exportable=exportability(images)")
    return bool(exportable_only)


def page_count(rows: int, size: int) -> int:
    """How many pages of ``size`` rows ``rows`` rows fill; an empty result is one empty page."""
    _check_count("rows", rows, minimum=0)
    _check_count("size", size, minimum=1)
    return max(1, -(-rows // size))


def page(frame: pd.DataFrame, number: int, size: int) -> pd.DataFrame:
    """Page ``number`` (from 1) of ``frame``, ``size`` rows a page; the last page may be shorter.

    Raises:
        ConfigError: ``size`` is not a positive integer, or ``number`` is not one of ``1..page_count``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"frame must be a DataFrame, not {type(frame).__name__}")
    pages = page_count(len(frame), size)
    _check_count("number", number, minimum=1)
    if number > pages:
        raise ConfigError(f"number {number} is past the last page ({pages} of {size} rows)")
    return frame.iloc[(number - 1) * size : number * size]


def _check_count(argument: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{argument} must be an integer of at least {minimum}, not {value!r}")
