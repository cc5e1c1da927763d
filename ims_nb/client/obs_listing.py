"""OBS object listing (``GET /{bucket}?prefix=&marker=&max-keys=``): page requests, XML parsing, the typed frame."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import httpx

from ims_nb.client.wire import MAX_PAGE, S3_CLASS_NAMES, _segment, error_for, url
from ims_nb.errors import MalformedAnswerError

if TYPE_CHECKING:
    import pandas as pd

#: The columns of ``client.objects(...)`` and their dtypes (``etag`` is the hex MD5, without OBS's quotes).
OBJECT_COLUMNS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "bucket": "string",
        "key": "string",
        "size_bytes": "Int64",
        "etag": "string",
        "last_modified": "datetime64[ns, UTC]",
        "storage_class": "string",
    }
)
_TIME_FORMATS: Final = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ObjectPage:
    """One page of a listing: its object records, and the marker of the next page (None on the last)."""

    records: list[dict[str, Any]]
    next_marker: str | None


def list_objects_request(
    obs_base: str, bucket: str, prefix: str, marker: str | None, remaining: int | None
) -> httpx.Request:
    """One page of ``bucket``'s objects under ``prefix`` after ``marker``: at most 1000, fewer when ``remaining``."""
    query = [("max-keys", str(MAX_PAGE if remaining is None else min(MAX_PAGE, remaining)))]
    if prefix:
        query.append(("prefix", prefix))
    if marker:
        query.append(("marker", marker))
    return httpx.Request("GET", url(obs_base, f"/{_segment(bucket, 'bucket')}", query))


def parse_objects_page(response: httpx.Response) -> ObjectPage:
    """A ListBucketResult (OBS or S3 namespace); ``NextMarker`` absent on a truncated page means the last key."""
    if not response.is_success:
        raise error_for(response)
    try:
        root = ET.fromstring(response.content)
        fields = {_local(child.tag): child for child in root}
        bucket = _text(fields.get("Name"))
        records = [_record(bucket, entry) for entry in root if _local(entry.tag) == "Contents"]
    except (ET.ParseError, ValueError, KeyError):
        raise MalformedAnswerError(
            "the object listing is not a valid ListBucketResult", method="GET", url=str(response.request.url)
        ) from None
    if _text(fields.get("IsTruncated")).lower() != "true":
        return ObjectPage(records, None)
    next_marker = _text(fields.get("NextMarker")) or (records[-1]["key"] if records else "")
    if not next_marker:
        raise MalformedAnswerError(
            "a truncated object listing names no next marker", method="GET", url=str(response.request.url)
        )
    return ObjectPage(records, next_marker)


def _record(bucket: str, entry: ET.Element) -> dict[str, Any]:
    fields = {_local(child.tag): _text(child) for child in entry}
    storage_class = fields.get("StorageClass") or "STANDARD"
    return {
        "bucket": bucket,
        "key": fields["Key"],
        "size_bytes": int(fields.get("Size") or 0),
        "etag": fields.get("ETag", "").strip('"'),
        "last_modified": _utc(fields.get("LastModified", "")),
        "storage_class": S3_CLASS_NAMES.get(storage_class, storage_class),
    }


def _utc(text: str) -> datetime | None:
    for pattern in _TIME_FORMATS:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(element: ET.Element | None) -> str:
    return "" if element is None else (element.text or "")


def objects_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Object records as a typed DataFrame with ``OBJECT_COLUMNS`` (empty but typed when there are none)."""
    import pandas as pd

    rows = list(records)
    columns = {name: [row.get(name) for row in rows] for name in OBJECT_COLUMNS}
    frame = pd.DataFrame(columns)
    frame["last_modified"] = pd.to_datetime(frame["last_modified"], utc=True)
    return frame.astype(dict(OBJECT_COLUMNS))
