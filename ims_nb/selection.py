"""Choosing images from the images frame: size bands, exportability, text search and filters, pages."""

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
from ims_nb.vocab import NORMAL_EXPORT_LIMIT, SIZE_LIMIT, GiB

__all__ = ["SEARCH_COLUMNS", "SIZE_BANDS", "exportability", "filter_images", "page", "page_count"]

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
#: The columns a text search looks in.
SEARCH_COLUMNS: Final = ("name", "id", "platform", "os_version")
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
    region and project id are read. The region profile is the one the client's exports get.

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
    region = region or getattr(client, "region", None)
    offline = _ImageRulesOnly(region, getattr(client, "project_id", None))
    summary = preflight_summary(images, bucket_url=_PLACEHOLDER_BUCKET_URL, file_format=_PLACEHOLDER_FORMAT,
                                region=region, client=offline, profile=profile_of(client, region))  # fmt: skip
    return pd.Series(summary["recommended"].notna().to_numpy(dtype=bool), index=images.index, name="exportable")


def filter_images(
    images: pd.DataFrame,
    *,
    text: str = "",
    platforms: Iterable[str] = (),
    statuses: Iterable[str] = (),
    size_bands: Iterable[str] = (),
    exportable: pd.Series | None = None,
    exportable_only: bool = False,
) -> pd.DataFrame:
    """The images that match a text search and every filter (vectorised; a few ms on 10,000 rows).

    Args:
        images: the images frame.
        text: words separated by spaces; each must occur, in any case, in the name, id, platform or os_version.
        platforms: keep these platforms (empty: all).
        statuses: keep these statuses (empty: all).
        size_bands: keep sizes in these ``SIZE_BANDS`` (empty: all, including unknown sizes).
        exportable: ``exportability(images)``, needed by ``exportable_only``.
        exportable_only: keep only the images ``exportable`` marks True (rows it lacks count as not exportable).

    Returns:
        The matching rows of ``images``, in order, with their index.

    Raises:
        ConfigError: an argument has the wrong type, a size band is unknown, or ``exportable_only`` lacks
            ``exportable``.
    """
    if not isinstance(images, pd.DataFrame):
        raise ConfigError(f"images must be the images frame (a DataFrame), not {type(images).__name__}")
    if not isinstance(text, str):
        raise ConfigError(f"text must be a string, not {type(text).__name__}")
    keep = _words_found(images, text.split())
    for column, argument, values in (("platform", "platforms", platforms), ("status", "statuses", statuses)):
        chosen = _strings(argument, values)
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
    columns = [images[column].astype("string").str.lower() for column in SEARCH_COLUMNS]
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
