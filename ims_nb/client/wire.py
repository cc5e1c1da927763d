"""Requests to IMS, IAM and OBS, and OBS's bucket and object answers: no I/O, shared by the sync and async clients."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ims_nb import signing
from ims_nb.client.answers import Token as Token  # the clients and tests have long read answers through wire
from ims_nb.client.answers import check
from ims_nb.client.answers import error_for as error_for
from ims_nb.client.answers import parse_images_page as parse_images_page
from ims_nb.client.answers import parse_job_id as parse_job_id
from ims_nb.client.answers import parse_object as parse_object
from ims_nb.client.answers import parse_project_id as parse_project_id
from ims_nb.client.answers import parse_token as parse_token
from ims_nb.errors import ConfigError, MalformedAnswerError
from ims_nb.vocab import FILE_FORMATS, Target

MAX_PAGE = 1000
JSON_HEADERS = {"Content-Type": "application/json"}
POST_HEADERS = {"Content-Type": "application/json;charset=utf-8"}

#: Friendly filter names (the official SDK's attribute names) and the wire names they stand for.
FILTER_ALIASES = {
    "imagetype": "__imagetype", "image_type": "__imagetype", "isregistered": "__isregistered",
    "os_bit": "__os_bit", "os_type": "__os_type", "platform": "__platform", "whole_image": "__whole_image",
    "kms_key_id": "__system__cmkid", "system_cmkid": "__system__cmkid",
    **{f"support_{s}": f"__support_{s}" for s in (
        "diskintensive", "highperformance", "kvm", "kvm_gpu_type", "kvm_infiniband", "largememory", "xen",
        "xen_gpu_type", "xen_hana")},
}  # fmt: skip
WIRE_FILTERS = frozenset(FILTER_ALIASES.values()) | frozenset({
    "container_format", "disk_format", "enterprise_project_id", "id", "member_status", "min_disk", "min_ram",
    "name", "owner", "protected", "sort_dir", "sort_key", "status", "tag", "virtual_env_type", "visibility",
    "flavor_id", "created_at", "updated_at", "architecture",
})  # fmt: skip


def wire_filters(filters: dict[str, Any]) -> list[tuple[str, str]]:
    """Validate listing filters and spell them as the service does (booleans as ``true``/``false``)."""
    pairs: list[tuple[str, str]] = []
    for name, value in filters.items():
        if value is None:
            continue
        wire = FILTER_ALIASES.get(name, name)
        if any(given == wire for given, _ in pairs):  # two names of one filter (imagetype and __imagetype)
            raise ConfigError(f"filter {name!r} is given twice (as {wire!r} under another name)")
        if wire in ("limit", "marker"):
            raise ConfigError(f"{name!r} is managed by the client's paging; use max_items to cap a listing")
        if wire not in WIRE_FILTERS:
            known = sorted(set(FILTER_ALIASES) | {w for w in WIRE_FILTERS if not w.startswith("__")})
            raise ConfigError(f"unknown image filter {name!r}; known filters: {', '.join(known)}")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float | str):
            text = str(value)
        else:
            raise ConfigError(f"filter {name!r} takes a string, number or boolean, not {type(value).__name__}")
        pairs.append((wire, text))
    return pairs


def url(base: str, path: str, query: list[tuple[str, str]] | None = None) -> httpx.URL:
    """``base + path`` with the query encoded and ordered exactly as the official SDK sends it."""
    encoded = signing.canonical_query(query or [])
    return httpx.URL(base + path, query=encoded.encode("ascii")) if encoded else httpx.URL(base + path)


def list_images_request(base: str, filters: list[tuple[str, str]], marker: str | None, limit: int) -> httpx.Request:
    query = [*filters, ("limit", str(limit))] + ([("marker", marker)] if marker else [])
    return httpx.Request("GET", url(base, "/v2/cloudimages", query), headers=JSON_HEADERS)


def show_image_request(base: str, image_id: str) -> httpx.Request:
    return httpx.Request("GET", url(base, f"/v2/images/{_segment(image_id, 'image_id')}"), headers=JSON_HEADERS)


def export_body(target: Target, file_format: str | None, quick: bool) -> dict[str, Any]:
    """The documented body: ``file_format`` for a normal export, ``is_quick_export`` and no format for fast export."""
    bucket_url = target.bucket_url
    if quick:
        if file_format is not None:
            raise ConfigError("file_format cannot be given with fast export (quick=True): the file is ZVHD2")
        return {"bucket_url": bucket_url, "is_quick_export": True}
    if file_format not in FILE_FORMATS:
        raise ConfigError(
            f"file_format must be one of {', '.join(FILE_FORMATS)} (or use quick=True), not {file_format!r}"
        )
    return {"bucket_url": bucket_url, "file_format": file_format}


def export_request(base: str, image_id: str, body: dict[str, Any]) -> httpx.Request:
    content = json.dumps(body).encode("utf-8")
    path = f"/v1/cloudimages/{_segment(image_id, 'image_id')}/file"
    return httpx.Request("POST", url(base, path), headers=POST_HEADERS, content=content)


def job_request(base: str, project_id: str, job_id: str) -> httpx.Request:
    path = f"/v1/{_segment(project_id, 'project_id')}/jobs/{_segment(job_id, 'job_id')}"
    return httpx.Request("GET", url(base, path), headers=JSON_HEADERS)


def job_progress_request(base: str, job_id: str) -> httpx.Request:
    return httpx.Request("GET", url(base, f"/v1/cloudimages/job/{_segment(job_id, 'job_id')}"), headers=JSON_HEADERS)


def projects_request(iam_base: str, region: str) -> httpx.Request:
    return httpx.Request("GET", url(iam_base, "/v3/projects", [("name", region)]), headers=JSON_HEADERS)


def token_request(iam_base: str, username: str, password: str, domain: str, region: str) -> httpx.Request:
    body = {"auth": {
        "identity": {"methods": ["password"],
                     "password": {"user": {"name": username, "password": password, "domain": {"name": domain}}}},
        "scope": {"project": {"name": region}},
    }}  # fmt: skip
    headers = {"Content-Type": "application/json;charset=utf8"}
    return httpx.Request("POST", url(iam_base, "/v3/auth/tokens"), headers=headers, content=json.dumps(body).encode())


def _segment(value: str, name: str) -> str:
    if not isinstance(value, str) or not value or value in (".", ".."):
        raise ConfigError(f"{name} must be a non-empty string, not {value!r}")
    return quote(value, safe="")


# --- OBS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketInfo:
    """What an export needs to know of a bucket."""

    name: str
    exists: bool
    region: str | None = None
    storage_class: str | None = None


#: V2 (S3) storage-class names and the OBS names they stand for.
S3_CLASS_NAMES = {"STANDARD_IA": "WARM", "GLACIER": "COLD"}


def bucket_request(obs_base: str, bucket: str) -> httpx.Request:
    return httpx.Request("HEAD", url(obs_base, f"/{_segment(bucket, 'bucket')}"))


def parse_bucket(bucket: str, response: httpx.Response) -> BucketInfo:
    """HEAD bucket: 404 means no such bucket; an absent storage-class header means STANDARD."""
    if response.status_code == 404:
        return BucketInfo(bucket, False)
    check(response)
    headers = response.headers
    region = headers.get("x-obs-bucket-location") or headers.get("x-amz-bucket-region")
    storage = headers.get("x-obs-storage-class") or headers.get("x-default-storage-class") or "STANDARD"
    return BucketInfo(bucket, True, region, S3_CLASS_NAMES.get(storage, storage))


def object_request(obs_base: str, bucket: str, key: str) -> httpx.Request:
    if not key:
        raise ConfigError("the object key must not be empty")
    return httpx.Request("HEAD", url(obs_base, f"/{_segment(bucket, 'bucket')}/{quote(key, safe='/~')}"))


def parse_object_size(response: httpx.Response) -> int | None:
    """HEAD object: its size, or None when it does not exist."""
    if response.status_code == 404:
        return None
    check(response)
    return int(response.headers.get("Content-Length", "0"))


def list_buckets_request(obs_base: str) -> httpx.Request:
    return httpx.Request("GET", url(obs_base, "/"), headers={"x-obs-location": "true"})


def parse_buckets(response: httpx.Response) -> list[BucketInfo]:
    if not response.is_success:
        raise error_for(response)
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError:
        raise MalformedAnswerError(
            "the bucket listing is not valid XML", method="GET", url=str(response.request.url)
        ) from None
    found = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Bucket":
            fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in element}
            found.append(BucketInfo(fields.get("Name", ""), True, fields.get("Location") or None))
    return found


# --- a simulator's control plane ------------------------------------------------------------------

#: The control-plane path of a simulator's clock (read with ``{}``, moved with ``{"advance": seconds}``).
SIM_CLOCK_PATH = "/_sim/clock"
#: How long a control-plane call may take (seconds): it is one loopback request.
CONTROL_TIMEOUT = 5.0


def clock_request(base: str, advance: float | None = None) -> httpx.Request:
    """Read a simulator's clock, after moving it on by ``advance`` seconds when given (unsigned: loopback only)."""
    body: dict[str, float] = {} if advance is None else {"advance": advance}
    timeout = httpx.Timeout(CONTROL_TIMEOUT).as_dict()
    return httpx.Request("POST", url(base, SIM_CLOCK_PATH), json=body, extensions={"timeout": timeout})
