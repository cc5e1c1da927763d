"""Typed pandas DataFrames from IMS image records (ImageInfo) and export-job records (ShowJob bodies), and snapshots."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb._extras import missing_extra
from ims_nb.frame_columns import (
    _BOOL,
    _FLOAT,
    _INT,
    _OBJECT,
    _STRING,
    _UTC_TIME,
    _flags,
    _floats,
    _integers,
    _objects,
    _tag_lists,
    _text,
    _utc_times,
)
from ims_nb.vocab import GiB

__all__ = ["IMAGE_COLUMNS", "JOB_COLUMNS", "RAW_COLUMN", "images_frame", "job_records_frame", "save_snapshot"]

#: Name of the column that holds each original record when ``images_frame(..., raw=True)``.
RAW_COLUMN: Final = "raw"
_DEFAULT_ENTERPRISE_PROJECT: Final = "0"
_DEFAULT_ARCHITECTURE: Final = "x86"

#: The columns of ``images_frame``, in order, with their pandas dtypes.
IMAGE_COLUMNS: Final[Mapping[str, str]] = MappingProxyType({
    "id": _STRING, "name": _STRING, "status": _STRING, "platform": _STRING, "os_version": _STRING,
    "os_type": _STRING, "os_bit": _INT, "image_type": _STRING, "visibility": _STRING, "virtual_env_type": _STRING,
    "disk_format": _STRING, "whole_image": _BOOL, "encrypted": _BOOL, "kms_key_id": _STRING,
    "source_image_id": _STRING, "product_code": _STRING, "size_bytes": _INT, "size_gb": _FLOAT, "min_disk_gb": _INT,
    "created_at": _UTC_TIME, "updated_at": _UTC_TIME, "tags": _OBJECT, "enterprise_project_id": _STRING,
    "architecture": _STRING, "owner": _STRING, "protected": _BOOL, "root_origin": _STRING, "backup_id": _STRING,
    "min_ram_mb": _INT, "hw_firmware_type": _STRING,
})  # fmt: skip

#: The columns of ``job_records_frame``, in order, with their pandas dtypes.
JOB_COLUMNS: Final[Mapping[str, str]] = MappingProxyType({
    "job_id": _STRING, "image_id": _STRING, "status": _STRING, "job_type": _STRING, "begin_time": _UTC_TIME,
    "end_time": _UTC_TIME, "duration_s": _FLOAT, "process_percent": _FLOAT, "error_code": _STRING,
    "fail_reason": _STRING,
})  # fmt: skip

# column -> ImageInfo field, by conversion.
_IMAGE_TEXT: Final = {
    "id": "id", "name": "name", "status": "status", "platform": "__platform", "os_version": "__os_version",
    "os_type": "__os_type", "image_type": "__imagetype", "visibility": "visibility",
    "virtual_env_type": "virtual_env_type", "disk_format": "disk_format", "owner": "owner",
    "hw_firmware_type": "hw_firmware_type",
}  # fmt: skip
_IMAGE_OPTIONAL_TEXT: Final = {  # "" means "none": <NA>
    "kms_key_id": "__system__cmkid", "source_image_id": "__originalimagename", "product_code": "__productcode",
    "root_origin": "__root_origin", "backup_id": "__backup_id",
}  # fmt: skip
_IMAGE_DEFAULTED_TEXT: Final = {  # absent, null or "" means the default
    "enterprise_project_id": ("enterprise_project_id", _DEFAULT_ENTERPRISE_PROJECT),
    "architecture": ("architecture", _DEFAULT_ARCHITECTURE),
}
_IMAGE_INTEGERS: Final = {"os_bit": "__os_bit", "size_bytes": "__image_size", "min_disk_gb": "min_disk",
                           "min_ram_mb": "min_ram"}  # fmt: skip
_IMAGE_TIMES: Final = {"created_at": "created_at", "updated_at": "updated_at"}
_IMAGE_FLAGS: Final[dict[str, tuple[str, bool | None]]] = {  # column -> (field, value when absent or null)
    "whole_image": ("__whole_image", False),
    "protected": ("protected", None),
}
_TAGS_FIELD: Final = "tags"
_IMAGE_FIELDS: Final = (
    *_IMAGE_TEXT.values(),
    *_IMAGE_OPTIONAL_TEXT.values(),
    *(field for field, _ in _IMAGE_DEFAULTED_TEXT.values()),
    *_IMAGE_INTEGERS.values(),
    *_IMAGE_TIMES.values(),
    *(field for field, _ in _IMAGE_FLAGS.values()),
    _TAGS_FIELD,
)
_ENTITIES_FIELD: Final = "entities"
_JOB_FIELDS: Final = ("job_id", "status", "job_type", "begin_time", "end_time", "error_code", "fail_reason")
_JOB_ENTITY_FIELDS: Final = ("image_id", "process_percent")

_DICT_KIND: Final = frozenset({dict})
_CHUNK: Final = 500  # records whose fields are read together (see ``_gathered``): they stay in a core's cache


def images_frame(records: Iterable[Mapping[str, Any]], *, raw: bool = False) -> pd.DataFrame:
    """One typed row per image, from ImageInfo records as ListImages returns them.

    Columns and dtypes are ``IMAGE_COLUMNS`` (plus ``raw`` last when asked for). Strings that carry numbers,
    flags and times on the wire are converted; a missing, null or malformed value becomes ``<NA>``/``NaN``/``NaT``
    rather than an error. Empty ``__system__cmkid``, ``__originalimagename``, ``__productcode``, ``__root_origin``
    and ``__backup_id`` are ``<NA>``; ``encrypted`` is True when ``__system__cmkid`` is non-empty; an absent or
    null ``__whole_image`` is False (``protected`` stays ``<NA>``); flags accept real booleans and "true"/"false"
    in any case; an absent or empty ``enterprise_project_id`` is "0" and ``architecture`` "x86"; ``tags`` is
    always a list of strings (a string is split on commas; a record's list of strings is shared, not copied, so
    treat it as read-only). Non-string text values become their ``str()``.

    Args:
        records: ImageInfo mappings (the ``images`` list of a ListImages response, any number of pages).
        raw: add a ``raw`` column holding each original record (the same object, not a copy).

    Returns:
        A DataFrame with a RangeIndex, one row per record, in input order.

    Raises:
        TypeError: a record is not a mapping (the message gives its position).
    """
    rows, values = _gathered(records, _IMAGE_FIELDS)
    data: dict[str, Any] = {}
    for column, field in _IMAGE_TEXT.items():
        data[column] = _text(values[field])
    for column, field in _IMAGE_OPTIONAL_TEXT.items():
        data[column] = _text(values[field], blank=None)
    for column, (field, default) in _IMAGE_DEFAULTED_TEXT.items():
        data[column] = _text(values[field], blank=default, default=default)
    for column, field in _IMAGE_INTEGERS.items():
        data[column] = _integers(values[field])
    for column, field in _IMAGE_TIMES.items():
        data[column] = _utc_times(values[field])
    for column, (field, absent) in _IMAGE_FLAGS.items():
        data[column] = _flags(values[field], absent)
    data["encrypted"] = pd.array(~data["kms_key_id"].isna(), dtype=_BOOL)
    data["size_gb"] = data["size_bytes"].to_numpy(dtype=_FLOAT, na_value=np.nan) / GiB
    data["tags"] = _tag_lists(values[_TAGS_FIELD])
    columns = list(IMAGE_COLUMNS)
    if raw:
        data[RAW_COLUMN] = _objects(rows)
        columns.append(RAW_COLUMN)
    return pd.DataFrame({column: data[column] for column in columns}, copy=False)


def job_records_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One typed row per job record, from ShowJob / ShowJobProgress response bodies.

    Columns and dtypes are ``JOB_COLUMNS``. ``image_id`` and ``process_percent`` come from ``entities``;
    ``duration_s`` is ``end_time - begin_time`` in seconds, NaN while the job has no ``end_time``; null or empty
    ``error_code`` and ``fail_reason`` are ``<NA>``. Malformed values become ``<NA>``/``NaN``/``NaT``.

    Args:
        records: job response bodies (``status``, ``job_id``, ``job_type``, ``begin_time``, ``end_time``,
            ``error_code``, ``fail_reason``, ``entities``).

    Returns:
        A DataFrame with a RangeIndex, one row per record, in input order.

    Raises:
        TypeError: a record is not a mapping (the message gives its position).
    """
    rows = _mappings(records)
    values = _columns(rows, _JOB_FIELDS)
    nested = _columns([_entities(row) for row in rows], _JOB_ENTITY_FIELDS)
    begin, end = _utc_times(values["begin_time"]), _utc_times(values["end_time"])
    data = {
        "job_id": _text(values["job_id"]),
        "image_id": _text(nested["image_id"]),
        "status": _text(values["status"]),
        "job_type": _text(values["job_type"]),
        "begin_time": begin,
        "end_time": end,
        "duration_s": np.asarray((end - begin).total_seconds(), dtype=_FLOAT),
        "process_percent": _floats(nested["process_percent"]),
        "error_code": _text(values["error_code"], blank=None),
        "fail_reason": _text(values["fail_reason"], blank=None),
    }
    return pd.DataFrame({column: data[column] for column in JOB_COLUMNS}, copy=False)


def save_snapshot(frame: pd.DataFrame, folder: str | os.PathLike[str], *, name: str = "inventory") -> Path:
    """Write ``frame`` as Parquet under ``folder`` (made if missing) and return the file's path.

    The file is ``{name}-{digest}.parquet``, the digest a SHA-256 prefix of the frame's contents: the same
    inventory gives the same file (saving it again replaces it with the same bytes), another gives another.

    Raises:
        MissingExtraError: pyarrow is not installed (``pip install 'ims-nb[parquet]'``).
    """
    if importlib.util.find_spec("pyarrow") is None:
        raise missing_extra("save_snapshot", "pyarrow")
    digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()[:12]
    path = Path(folder) / f"{name}-{digest}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def _mappings(records: Iterable[Mapping[str, Any]], *, start: int = 0) -> list[Mapping[str, Any]]:
    rows = list(records)
    if _plain(rows):  # the usual case, checked in C
        return rows
    for position, row in enumerate(rows, start):
        if type(row) is not dict and not isinstance(row, Mapping):
            raise TypeError(f"record {position} is a {type(row).__name__}, not a mapping")
    return rows


def _entities(row: Mapping[str, Any]) -> Mapping[str, Any]:
    entities = row.get(_ENTITIES_FIELD)
    return entities if isinstance(entities, Mapping) else {}


def _gathered(records: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> tuple[list[Any], dict[str, list[Any]]]:
    """The records as a list and field -> values, read a chunk at a time while the chunk is in the CPU cache
    (measured a third faster than reading each field down all 20,000 records of a listing)."""
    rows: list[Any] = []
    columns: dict[str, list[Any]] = {field: [] for field in fields}
    iterator = iter(records)
    while chunk := _mappings(islice(iterator, _CHUNK), start=len(rows)):
        rows += chunk
        for field, values in _columns(chunk, fields).items():
            columns[field] += values
    return rows, columns


def _columns(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> dict[str, list[Any]]:
    """Field -> its value in every record (None if absent), one pass per field.

    Column by column on purpose: a row-major pass's per-record tuples set off the cyclic garbage collector, whose
    passes then walk the freshly parsed records (measured: 40 ms more per 20,000 records, and still 15 ms more
    when the tuples live only as long as a chunk of 500).
    """
    plain = _plain(rows)
    return {field: _column(rows, field, plain=plain) for field in fields}


def _plain(rows: Sequence[Any]) -> bool:
    """Whether every row is a plain dict (whose items C-level getters may read: no ``__missing__``)."""
    return set(map(type, rows)) <= _DICT_KIND


def _column(rows: Sequence[Mapping[str, Any]], field: str, *, plain: bool) -> list[Any]:
    if plain:  # C-level item access is a third faster than .get; plain dicts only (no __missing__ side effects)
        try:
            return list(map(itemgetter(field), rows))
        except KeyError:
            pass  # some record lacks the field
    return [row.get(field) for row in rows]
