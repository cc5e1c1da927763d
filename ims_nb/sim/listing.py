"""GET /v2/cloudimages: query validation, filters, sorting and marker paging."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ims_nb.sim.errors import ims_error

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
SORT_KEYS = ("created_at", "name", "container_format", "disk_format", "status", "id", "size")
TIME_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "neq": operator.ne,
}
TIME_OPS = tuple(TIME_COMPARISONS)

#: Query parameters compared for equality with the image field of the same (or the mapped) name.
EQUALITY = {
    "__imagetype": "__imagetype",
    "__isregistered": "__isregistered",
    "__os_bit": "__os_bit",
    "__os_type": "__os_type",
    "__platform": "__platform",
    "__support_diskintensive": "__support_diskintensive",
    "__support_highperformance": "__support_highperformance",
    "__support_kvm": "__support_kvm",
    "__support_kvm_gpu_type": "__support_kvm_gpu_type",
    "__support_kvm_infiniband": "__support_kvm_infiniband",
    "__support_largememory": "__support_largememory",
    "__support_xen": "__support_xen",
    "__support_xen_gpu_type": "__support_xen_gpu_type",
    "__support_xen_hana": "__support_xen_hana",
    "__system__cmkid": "__system__cmkid",
    "container_format": "container_format",
    "disk_format": "disk_format",
    "id": "id",
    "name": "name",
    "owner": "owner",
    "status": "status",
    "virtual_env_type": "virtual_env_type",
    "visibility": "visibility",
    "architecture": "architecture",
}
ENUMS = {
    "__imagetype": ("gold", "private", "shared", "market"),
    "__os_type": ("Linux", "Windows", "Other"),
    "__os_bit": ("32", "64"),
    "visibility": ("public", "private", "shared"),
    "status": ("queued", "saving", "deleted", "killed", "active"),
    "member_status": ("accepted", "rejected", "pending"),
    "architecture": ("x86", "arm"),
    "sort_dir": ("asc", "desc"),
}
BOOLEANS = ("protected", "__whole_image")
INTEGERS = ("min_disk", "min_ram")
OTHER = (
    "limit",
    "marker",
    "sort_key",
    "sort_dir",
    "created_at",
    "updated_at",
    "tag",
    "member_status",
    "enterprise_project_id",
    "flavor_id",
)
KNOWN = frozenset(EQUALITY) | frozenset(BOOLEANS) | frozenset(INTEGERS) | frozenset(OTHER)
#: RAM (MB) of the flavors the simulator knows; an image fits a flavor when its min_ram fits.
FLAVOR_RAM = {
    "s6.small.1": 1024,
    "s6.medium.2": 4096,
    "s6.large.2": 8192,
    "c6.xlarge.2": 16384,
    "c6.2xlarge.4": 65536,
    "m6.xlarge.8": 65536,
}

Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Query:
    """A validated listing request."""

    predicates: tuple[Predicate, ...]
    cache_key: tuple[tuple[str, str], ...]
    sort_key: str
    sort_dir: str
    limit: int
    marker: str | None


def parse_query(pairs: Sequence[tuple[str, str]], project_id: str) -> Query:
    """Validate every parameter and turn the filters into predicates (IMG.0001 on any defect)."""
    params: dict[str, str] = {}
    for key, value in pairs:
        if key not in KNOWN:
            raise ims_error("IMG.0001", f"Unsupported query parameter {key!r}.")
        if key in params:
            raise ims_error("IMG.0001", f"Query parameter {key!r} is given more than once.")
        params[key] = value
    for key, allowed in ENUMS.items():
        if key in params and params[key] not in allowed:
            raise ims_error(
                "IMG.0001", f"Invalid value {params[key]!r} for {key}; expected one of {', '.join(allowed)}."
            )
    predicates: list[Predicate] = []
    for key, field in EQUALITY.items():
        if key in params:
            predicates.append(_equals(field, params[key]))
    for key in BOOLEANS:
        if key in params:
            predicates.append(_equals(key, _boolean(key, params[key])))
    for key in INTEGERS:
        if key in params:
            predicates.append(_equals(key, _integer(key, params[key], 0, 1 << 31)))
    for key in ("created_at", "updated_at"):
        if key in params:
            predicates.append(_time_filter(key, params[key]))
    if "tag" in params:
        predicates.append(_tag_filter(params["tag"]))
    if "member_status" in params:
        predicates.append(_member_filter(params, project_id))
    if "enterprise_project_id" in params and params["enterprise_project_id"] != "all_granted_eps":
        wanted = params["enterprise_project_id"]
        predicates.append(lambda image: (image.get("enterprise_project_id") or "0") == wanted)
    if "flavor_id" in params:
        ram = FLAVOR_RAM.get(params["flavor_id"], -1)
        predicates.append(
            lambda image: (
                image.get("virtual_env_type") == "FusionCompute" and 0 <= int(image.get("min_ram") or 0) <= ram
            )
        )
    sort_key = params.get("sort_key", "created_at")
    if sort_key not in SORT_KEYS:
        raise ims_error("IMG.0001", f"Invalid sort_key {sort_key!r}; expected one of {', '.join(SORT_KEYS)}.")
    limit = _integer("limit", params.get("limit", str(DEFAULT_LIMIT)), 1, MAX_LIMIT)
    filters = tuple(sorted((k, v) for k, v in params.items() if k not in ("limit", "marker")))
    return Query(tuple(predicates), filters, sort_key, params.get("sort_dir", "desc"), limit, params.get("marker"))


def _equals(field: str, wanted: Any) -> Predicate:
    return lambda image: image.get(field) == wanted


def _boolean(key: str, text: str) -> bool:
    if text not in ("true", "false"):
        raise ims_error("IMG.0001", f"Invalid value {text!r} for {key}; expected true or false.")
    return text == "true"


def _integer(key: str, text: str, low: int, high: int) -> int:
    if not re.fullmatch(r"\d{1,10}", text) or not low <= int(text) <= high:
        raise ims_error("IMG.0001", f"Invalid value {text!r} for {key}; expected an integer from {low} to {high}.")
    return int(text)


def parse_time(text: str) -> float:
    for layout in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(text)


def _time_filter(key: str, text: str) -> Predicate:
    op, _, when = text.partition(":")
    try:
        if op not in TIME_OPS:
            raise ValueError(op)
        moment = parse_time(when)
    except ValueError:
        raise ims_error(
            "IMG.0001",
            f"Invalid {key} filter {text!r}; expected <op>:<time> with op in {', '.join(TIME_OPS)} "
            "and time as yyyy-MM-ddThh:mm:ssZ.",
        ) from None
    compare: Callable[[float, float], bool] = TIME_COMPARISONS[op]
    return lambda image: compare(parse_time(image[key]), moment)


def _tag_filter(text: str) -> Predicate:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ims_error("IMG.0001", f"Invalid tag filter {text!r}; expected key=value.")
    wanted = f"{key}.{value}"
    return lambda image: wanted in (image.get("tags") or [])


def _member_filter(params: dict[str, str], project_id: str) -> Predicate:
    if params.get("visibility") != "shared":
        raise ims_error("IMG.0001", "member_status can only be used with visibility=shared.")
    wanted = params["member_status"]
    return lambda image: image.get("owner") != project_id and wanted == "accepted"


def sort_images(images: list[dict[str, Any]], sort_key: str, sort_dir: str) -> list[dict[str, Any]]:
    """Stable order: the sort key, then the id, in the requested direction."""

    def key(image: dict[str, Any]) -> tuple[Any, str]:
        value: Any = int(image.get("__image_size") or 0) if sort_key == "size" else image.get(sort_key) or ""
        return (value, image["id"])

    return sorted(images, key=key, reverse=sort_dir == "desc")


def page(ordered: list[dict[str, Any]], positions: dict[str, int], query: Query) -> list[dict[str, Any]]:
    """The page after ``marker`` (IMG.0001 when the marker is not an image of this listing)."""
    start = 0
    if query.marker:
        if query.marker not in positions:
            raise ims_error("IMG.0001", f"The marker {query.marker!r} is not an image of this listing.")
        start = positions[query.marker] + 1
    return ordered[start : start + query.limit]
