"""Dated Parquet snapshots of an inventory, partitioned by region, read back as one frame and compared."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb._extras import require
from ims_nb.errors import ConfigError
from ims_nb.frames import IMAGE_COLUMNS, RAW_COLUMN

__all__ = ["CHANGES", "DEFAULT_ROOT", "REGION_COLUMN", "TAKEN_AT_COLUMN", "compare_snapshots", "snapshot", "snapshots"]

#: Where ``snapshot`` writes and ``snapshots`` reads when no root is given (the git-ignored data folder).
DEFAULT_ROOT: Final = "data/snapshots"
#: The column (and the frame attribute, for a single-region frame) that names each row's region.
REGION_COLUMN: Final = "region"
#: The column ``snapshots`` adds: when the snapshot was taken (UTC, to the second).
TAKEN_AT_COLUMN: Final = "taken_at"
#: What ``compare_snapshots`` says of an image, in its ``change`` column.
CHANGES: Final = ("new", "deleted", "grown")

_NEW, _DELETED, _GROWN = CHANGES
_ID: Final = "id"
_NAME: Final = "name"
_SIZE: Final = "size_bytes"
# The frames' own dtypes, named by a column that has each.
_UTC_TIME: Final = IMAGE_COLUMNS["created_at"]
_STRING: Final = IMAGE_COLUMNS[_ID]
_OBJECT: Final = IMAGE_COLUMNS["tags"]
_PART: Final = "part-0.parquet"
_REGION_DIR: Final = f"{REGION_COLUMN}="
_TAKEN_DIR: Final = "taken="
_TAKEN_FORMAT: Final = "%Y-%m-%dT%H%M%SZ"
_BEFORE: Final = "_before"
_AFTER: Final = "_after"
_SUFFIXES: Final = (_BEFORE, _AFTER)
_SAFE_REGION: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

#: A time as callers give it: a datetime (a pandas Timestamp is one) or ISO 8601 text.
TimeLike = datetime | str


def snapshot(
    frame: pd.DataFrame,
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    *,
    region: str | None = None,
    taken_at: TimeLike | None = None,
) -> list[Path]:
    """Write ``frame`` as a dated snapshot, one Parquet file per region, and return the files written.

    Layout, Hive-style (``pd.read_parquet(root)`` reads it too, as a pyarrow dataset):
    ``root/region=<region>/taken=<YYYY-MM-DDTHHMMSSZ>/part-0.parquet``; the ``region`` column lives in the folder
    name, not in the file. Each partition is written under a hidden temporary name and renamed into place, so a
    reader never sees part of one, and a failed write leaves nothing behind (no region's file of this snapshot).
    Dtypes round-trip exactly through ``snapshots``; the ``raw`` column of ``images_frame(..., raw=True)`` is not
    kept.

    Args:
        frame: an inventory (``client.images()``, or an estate frame with a ``region`` column).
        root: the snapshots folder (made if missing).
        region: the region of a frame without a ``region`` column, when ``frame.attrs["region"]`` is not set.
        taken_at: the snapshot's time (naive means UTC; kept to the second); default: now.

    Raises:
        ConfigError: the region is unknown (no column, no ``attrs["region"]``, no ``region=``), missing on
            some rows, not a plain name, or ``region=`` disagrees with the frame; a snapshot of that region at
            that second already exists.
        MissingExtraError: pyarrow is not installed (``pip install 'ims-nb[parquet]'``).
    """
    require("snapshot", "parquet")
    when = _utc(taken_at) if taken_at is not None else pd.Timestamp.now(tz="UTC")
    stamp = when.floor("s").strftime(_TAKEN_FORMAT)
    parts = dict(_by_region(frame, region))
    staged: dict[Path, Path] = {}  # final partition folder -> its temporary twin
    placed: list[Path] = []
    try:
        for name, rows in parts.items():
            final = Path(root) / f"{_REGION_DIR}{name}" / f"{_TAKEN_DIR}{stamp}"
            if final.exists():
                raise ConfigError(f"a snapshot of region {name!r} taken at {stamp} already exists: {final}")
            final.parent.mkdir(parents=True, exist_ok=True)
            staged[final] = Path(tempfile.mkdtemp(prefix=f".{_TAKEN_DIR}{stamp}-", dir=final.parent))
            rows.to_parquet(staged[final] / _PART, index=False)
        for final, temporary in staged.items():
            temporary.rename(final)  # atomic; refuses a folder that appeared meanwhile
            placed.append(final)
    except BaseException:
        _discard([*staged.values(), *placed])
        raise
    return sorted(final / _PART for final in placed)


def snapshots(
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    *,
    since: TimeLike | None = None,
    regions: str | Iterable[str] | None = None,
) -> pd.DataFrame:
    """Every snapshot under ``root`` as one frame: ``taken_at`` and ``region`` first, then the inventory's columns.

    Rows are sorted by ``taken_at``, ``region``, then image ``id``, on a fresh RangeIndex. ``taken_at`` is a UTC
    datetime, ``region`` a string; the other columns keep the dtypes they were written with (a column some
    snapshots lack is ``<NA>`` there). Files ``save_snapshot`` wrote (``inventory-<digest>.parquet``) and
    hidden temporary folders are not snapshots and are skipped. An empty or missing ``root`` gives an empty
    frame with the image columns' dtypes.

    Args:
        root: the snapshots folder.
        since: keep snapshots taken at or after this time (naive means UTC).
        regions: keep these regions only (a name or several).

    Raises:
        ConfigError: a ``taken=`` folder's name is not a ``YYYY-MM-DDTHHMMSSZ`` time.
        MissingExtraError: pyarrow is not installed (``pip install 'ims-nb[parquet]'``).
    """
    require("snapshots", "parquet")
    floor = _utc(since) if since is not None else None
    wanted = {regions} if isinstance(regions, str) else None if regions is None else set(regions)
    frames = [
        _read(path, name, when)
        for path, name, when in _partitions(Path(root))
        if (wanted is None or name in wanted) and (floor is None or when >= floor)
    ]
    if not frames:
        return _empty()
    found = pd.concat(frames, ignore_index=True)
    keys = [key for key in (TAKEN_AT_COLUMN, REGION_COLUMN, _ID) if key in found.columns]
    return found.sort_values(keys, kind="stable", ignore_index=True)


def compare_snapshots(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """What changed between two inventories: images new in ``after``, deleted from ``before``, and grown.

    Images are matched by ``region`` and ``id`` when both frames have a ``region`` column, else by ``id``;
    grown means ``size_bytes`` increased. Pass two snapshots of ``snapshots()`` (e.g. the rows of two
    ``taken_at`` values) or two ``client.images()`` frames.

    Returns:
        One row per changed image: ``change`` (``new``, ``deleted`` or ``grown``), ``region``, ``id``,
        ``name`` (the latest known), ``size_bytes_before`` and ``size_bytes_after`` (``<NA>`` where the image
        did not exist), sorted by change, region and id.
    """
    keys = [REGION_COLUMN, _ID] if {REGION_COLUMN} <= {*before.columns} & {*after.columns} else [_ID]
    merged = pd.merge(
        _sides(before, keys), _sides(after, keys), on=keys, how="outer", suffixes=_SUFFIXES, indicator=True
    )
    side = merged.pop("_merge")
    grown = (merged[_SIZE + _AFTER] > merged[_SIZE + _BEFORE]).fillna(False).astype(bool)
    change = pd.Series(pd.NA, index=merged.index, dtype=_STRING)
    change[(side == "right_only").to_numpy()] = _NEW
    change[(side == "left_only").to_numpy()] = _DELETED
    change[((side == "both") & grown).to_numpy()] = _GROWN
    result = pd.DataFrame(
        {
            "change": change,
            REGION_COLUMN: merged[REGION_COLUMN] if REGION_COLUMN in merged.columns else pd.NA,
            _ID: merged[_ID],
            _NAME: merged[_NAME + _AFTER].fillna(merged[_NAME + _BEFORE]),
            _SIZE + _BEFORE: merged[_SIZE + _BEFORE],
            _SIZE + _AFTER: merged[_SIZE + _AFTER],
        }
    ).astype({REGION_COLUMN: _STRING, _ID: _STRING, _NAME: _STRING})
    result = result[result["change"].notna()]
    rank = result["change"].map({word: position for position, word in enumerate(CHANGES)}).astype(int)
    ordered = result.assign(_rank=rank).sort_values(["_rank", REGION_COLUMN, _ID], kind="stable")
    return ordered.drop(columns="_rank").reset_index(drop=True)


def _sides(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The columns a comparison reads, one row per key (the last row wins if a key repeats)."""
    columns = [*keys, _NAME, _SIZE]
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ConfigError(f"compare_snapshots needs column(s) {', '.join(missing)}; pass client.images() frames")
    if REGION_COLUMN not in keys and REGION_COLUMN in frame.columns:  # one side knows the regions: keep them
        columns.append(REGION_COLUMN)
    return frame[columns].drop_duplicates(subset=keys, keep="last")


def _by_region(frame: pd.DataFrame, region: str | None) -> Iterator[tuple[str, pd.DataFrame]]:
    """Each region's rows, without the ``region`` and ``raw`` columns (the region is the folder's name)."""
    kept = frame.drop(columns=[c for c in (REGION_COLUMN, RAW_COLUMN) if c in frame.columns]).reset_index(drop=True)
    if REGION_COLUMN not in frame.columns:
        yield _checked(_frame_region(frame, region)), kept
        return
    names = frame[REGION_COLUMN].astype(_STRING).reset_index(drop=True)
    if names.isna().any():
        raise ConfigError(f"the {REGION_COLUMN!r} column is missing on {int(names.isna().sum())} row(s)")
    if region is not None and not (names == region).all():
        raise ConfigError(f"region={region!r} disagrees with the frame's {REGION_COLUMN!r} column")
    for name in sorted(set(names)):
        yield _checked(name), kept[(names == name).to_numpy()].reset_index(drop=True)


def _frame_region(frame: pd.DataFrame, region: str | None) -> str:
    """The region of a frame without a region column: ``region=``, else its ``attrs``; both must agree."""
    known = frame.attrs.get(REGION_COLUMN)
    if region is not None and known is not None and region != known:
        raise ConfigError(f"region={region!r} disagrees with the frame's attrs[{REGION_COLUMN!r}] = {known!r}")
    found = region if region is not None else known
    if found is None:
        raise ConfigError(
            f"the frame has no {REGION_COLUMN!r} column and no attrs[{REGION_COLUMN!r}]: "
            f"pass region=, e.g. snapshot(frame, region=client.region)"
        )
    return str(found)


def _checked(region: str) -> str:
    if not _SAFE_REGION.fullmatch(region):
        raise ConfigError(f"region {region!r} is not a plain name (letters, digits, '.', '_', '-')")
    return region


def _discard(folders: list[Path]) -> None:
    """Undo a failed snapshot: its folders (temporary or already renamed), and region folders left empty."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # only if now empty: other snapshots' partitions stay
            folder.parent.rmdir()


def _partitions(root: Path) -> Iterator[tuple[Path, str, pd.Timestamp]]:
    """(file, region, taken at) of every snapshot partition under ``root``."""
    for path in sorted(root.glob(f"{_REGION_DIR}*/{_TAKEN_DIR}*/{_PART}")):
        stamp = path.parent.name.removeprefix(_TAKEN_DIR)
        try:
            when = pd.Timestamp(datetime.strptime(stamp, _TAKEN_FORMAT), tz="UTC")
        except ValueError:
            raise ConfigError(f"{path.parent} is not a snapshot folder: its time is not {_TAKEN_FORMAT}") from None
        yield path, path.parent.parent.name.removeprefix(_REGION_DIR), when


def _read(path: Path, region: str, taken_at: pd.Timestamp) -> pd.DataFrame:
    """One partition with its ``taken_at`` and ``region`` columns first; list columns come back as lists."""
    rows = pd.read_parquet(path)
    for column in rows.columns[(rows.dtypes == _OBJECT).to_numpy()]:
        values = rows[column].tolist()
        if any(isinstance(value, np.ndarray) for value in values):
            lists = [value.tolist() if isinstance(value, np.ndarray) else value for value in values]
            rows[column] = np.fromiter(lists, dtype=_OBJECT, count=len(lists))
    rows.insert(0, REGION_COLUMN, pd.array([region] * len(rows), dtype=_STRING))
    rows.insert(0, TAKEN_AT_COLUMN, pd.array([taken_at] * len(rows), dtype=_UTC_TIME))
    return rows


def _empty() -> pd.DataFrame:
    dtypes = {TAKEN_AT_COLUMN: _UTC_TIME, REGION_COLUMN: _STRING, **IMAGE_COLUMNS}
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in dtypes.items()})


def _utc(value: TimeLike) -> pd.Timestamp:
    """A UTC instant from a datetime, Timestamp or ISO 8601 text; a naive time is taken as UTC."""
    when = pd.Timestamp(value)
    return when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
