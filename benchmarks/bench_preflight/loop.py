"""The preflight benchmark's baseline: a straightforward per-row Python loop over the same rules as ``preflight``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from ims_nb.preflight import VIOLATION_COLUMNS
from ims_nb.rules import (
    FILE_FORMATS,
    MISSING,
    NORMAL_EXPORT_LIMIT,
    RESTRICTED_PLATFORMS,
    RULES_BY_ID,
    SIZE_LIMIT,
    RegionProfile,
    Verdict,
    profile_for,
)
from ims_nb.vocab import FAST_EXPORT_EXTENSION, GiB

Violation = tuple[Any, ...]  # (image_id, rule, severity, message, code, fix)


def text(value: Any) -> str | None:
    """A text field: None stays None, anything else its str()."""
    return None if value is None else str(value)


def optional_text(value: Any) -> str | None:
    """A text field where "" means "none"."""
    return None if value is None or value == "" else str(value)


def integer(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def flag(value: Any, absent: bool | None) -> bool | None:
    if value is True or value is False:
        return value
    if value is None:
        return absent
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def parse_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the rules, messages and object keys need, from one raw ImageInfo record."""
    size = integer(record.get("__image_size"))
    kms_key_id = optional_text(record.get("__system__cmkid"))
    return {
        "id": text(record.get("id")),
        "name": text(record.get("name")),
        "status": text(record.get("status")),
        "platform": text(record.get("__platform")),
        "image_type": text(record.get("__imagetype")),
        "visibility": text(record.get("visibility")),
        "owner": text(record.get("owner")),
        "virtual_env_type": text(record.get("virtual_env_type")),
        "whole_image": flag(record.get("__whole_image"), False),
        "kms_key_id": kms_key_id,
        "encrypted": kms_key_id is not None,
        "source_image_id": optional_text(record.get("__originalimagename")),
        "product_code": optional_text(record.get("__productcode")),
        "size_bytes": size,
        "size_gb": None if size is None else size / GiB,
    }


BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
FILE_CHARS = re.compile(r"[A-Za-z0-9._-]+")
IP_LIKE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def check_bucket_url(bucket_url: str) -> tuple[str | None, str | None]:
    """(IMG code, problem) for one ``bucket:key``, or (None, None)."""
    if ":" not in bucket_url:
        return "IMG.0017", "expected 'bucket:object'"
    bucket, key = bucket_url.split(":", 1)
    if not bucket:
        return "IMG.0068", "the bucket name is empty"
    if len(bucket) < 3 or len(bucket) > 63:
        return "IMG.0109", f"bucket name {bucket!r} must be 3 to 63 characters long"
    if not BUCKET_CHARS.fullmatch(bucket):
        return "IMG.0109", f"bucket name {bucket!r} may hold only lowercase letters, digits, '-' and '.'"
    if bucket[0] in "-." or bucket[-1] in "-.":
        return "IMG.0109", f"bucket name {bucket!r} must start and end with a letter or digit"
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "IMG.0109", f"bucket name {bucket!r} must not contain '..', '.-' or '-.'"
    if IP_LIKE.fullmatch(bucket):
        return "IMG.0109", f"bucket name {bucket!r} must not look like an IP address"
    if not key or key.endswith("/"):
        return "IMG.0073", "the file name is empty"
    if " " in key:
        return "IMG.0175", f"file name {key!r} contains spaces"
    segments = key.split("/")
    if len(segments[-1]) > 128 or len(key) > 1023:
        return "IMG.0074", f"file name {segments[-1][:40]!r}... is longer than 128 characters"
    for segment in segments:
        if not segment or not FILE_CHARS.fullmatch(segment):
            return "IMG.0075", f"path segment {segment!r} may hold only letters, digits, '-', '.' and '_'"
    return None, None


def target_for(image: dict[str, Any], bucket_url: str, file_format: str | None, quick: bool, region: str | None):
    """Where this image would go: bucket, key (from the template), extension and the bucket_url's problem."""
    extension = FAST_EXPORT_EXTENSION if quick else (file_format or "")
    bucket, sep, template = bucket_url.partition(":")
    key = None
    url = bucket_url
    if sep:
        name = UNSAFE_KEY_CHARS.sub("-", image["name"] if image["name"] is not None else "image")
        platform_name = UNSAFE_KEY_CHARS.sub("-", image["platform"] if image["platform"] is not None else "other")
        image_id = image["id"] or ""
        key = template.format(name=name, id=image_id, id8=image_id[:8], ext=extension, platform=platform_name,
                              format=extension)  # fmt: skip
        url = bucket + ":" + key
    code, problem = check_bucket_url(url)
    return {
        "bucket": bucket, "key": key, "bucket_url": url, "bucket_url_code": code, "bucket_url_problem": problem,
        "expected_extension": extension, "file_format": file_format, "quick": quick, "region": region,
        "project_id": None,
        # what a client would look up; without one they are unknown and those rules never fire
        "bucket_exists": None, "bucket_region": None, "bucket_class": None, "object_exists": None,
        "exporting": None, "exporting_job": None,
    }  # fmt: skip


def violation(rule: str, severity: str, code: str | None, image: dict[str, Any], target: dict[str, Any],
              note: str = "") -> Violation:  # fmt: skip
    """One violation row, its message and fix filled from the rule's templates (missing values read "(missing)")."""
    fields = {key: MISSING if value is None else value for key, value in {**image, **target}.items()}
    template = RULES_BY_ID[rule]
    return (image["id"], rule, severity, template.message.format_map(fields) + note, code,
            template.fix.format_map(fields))  # fmt: skip


def unconfirmed_note(target: dict[str, Any], profile: RegionProfile) -> str:
    where = "" if target["region"] is None else f" in region {target['region']}"
    return f" (unconfirmed{where}: {profile.source})"


def check_image_not_private(image, target, profile):
    public = image["image_type"] == "gold" or (image["visibility"] == "public" and image["image_type"] != "market")
    if public:
        return violation("image-not-private", "error", "IMG.0077", image, target)
    if image["image_type"] == "market":
        return violation("image-not-private", "error", "IMG.0078", image, target)
    other_owner = target["project_id"] is not None and image["owner"] != target["project_id"]
    if image["image_type"] == "shared" or other_owner:  # shared with you: another tenant's
        return violation("image-not-private", "error", "IMG.0106", image, target)
    return None


def check_image_not_active(image, target, profile):
    if image["status"] != "active":
        return violation("image-not-active", "error", "IMG.0046", image, target)
    return None


def check_full_ecs_image(image, target, profile):
    if image["whole_image"]:
        return violation("full-ecs-image", "error", "IMG.0128", image, target)
    return None


def check_iso_image(image, target, profile):
    if image["virtual_env_type"] == "IsoImage":
        return violation("iso-image", "error", "IMG.0167", image, target)
    return None


def check_koogallery_origin(image, target, profile):
    if image["product_code"] is not None and image["image_type"] != "market":
        return violation("koogallery-origin", "error", "IMG.0078", image, target)
    return None


def check_restricted_os_origin(image, target, profile):
    if image["source_image_id"] is None or image["platform"] not in RESTRICTED_PLATFORMS:
        return None
    if image["platform"] == "Ubuntu":
        if profile.ubuntu_derived is Verdict.ALLOWED:
            return None
        if profile.ubuntu_derived is Verdict.UNCONFIRMED:
            return violation("restricted-os-origin", "warning", "IMG.0071", image, target,
                             unconfirmed_note(target, profile))  # fmt: skip
    return violation("restricted-os-origin", "error", "IMG.0071", image, target)


def check_size_limit(image, target, profile):
    if image["size_bytes"] is not None and image["size_bytes"] >= SIZE_LIMIT:
        return violation("size-limit", "error", "IMG.0071", image, target)
    return None


def check_fast_export_required(image, target, profile):
    size = image["size_bytes"]
    if size is None or not NORMAL_EXPORT_LIMIT < size < SIZE_LIMIT or target["quick"]:
        return None
    if profile.normal_over_128 is Verdict.ALLOWED:
        return None
    if profile.normal_over_128 is Verdict.UNCONFIRMED:
        return violation("fast-export-required", "warning", "IMG.0160", image, target,
                         unconfirmed_note(target, profile))  # fmt: skip
    return violation("fast-export-required", "error", "IMG.0160", image, target)


def check_encrypted_fast_export(image, target, profile):
    if image["encrypted"] and target["quick"]:
        return violation("encrypted-fast-export", "error", "IMG.0071", image, target)
    return None


def check_format_unsupported(image, target, profile):
    if target["quick"] or target["file_format"] in FILE_FORMATS:
        return None
    code = "IMG.0001" if target["file_format"] is None else "IMG.0072"
    return violation("format-unsupported", "error", code, image, target)


def check_format_with_fast_export(image, target, profile):
    if target["quick"] and target["file_format"] is not None:
        return violation("format-with-fast-export", "error", "IMG.0001", image, target)
    return None


def check_bucket_url_invalid(image, target, profile):
    if target["bucket_url_code"] is not None:
        return violation("bucket-url-invalid", "error", target["bucket_url_code"], image, target)
    return None


def check_bucket_not_found(image, target, profile):
    if target["bucket_exists"] is False:
        return violation("bucket-not-found", "error", "IMG.0069", image, target)
    return None


def check_bucket_region_mismatch(image, target, profile):
    bucket_region, region = target["bucket_region"], target["region"]
    if bucket_region is not None and region is not None and bucket_region != region:
        return violation("bucket-region-mismatch", "error", "IMG.0058", image, target)
    return None


def check_bucket_not_standard(image, target, profile):
    if target["bucket_class"] is not None and target["bucket_class"] != "STANDARD":
        return violation("bucket-not-standard", "error", "IMG.0069", image, target)
    return None


def check_object_exists(image, target, profile):
    if target["object_exists"]:
        return violation("object-exists", "error", "IMG.0070", image, target)
    return None


def check_object_extension_mismatch(image, target, profile):
    key = target["key"]
    if not key or target["bucket_url_code"] is not None:
        return None
    if key.rsplit(".", 1)[-1].lower() != target["expected_extension"]:
        return violation("object-extension-mismatch", "warning", None, image, target)
    return None


def check_already_exporting(image, target, profile):
    if target["exporting"]:
        return violation("already-exporting", "error", "IMG.0148", image, target)
    return None


LOOP_CHECKS: tuple[Callable[..., Violation | None], ...] = (
    check_image_not_private, check_image_not_active, check_full_ecs_image, check_iso_image,
    check_koogallery_origin, check_restricted_os_origin, check_size_limit, check_fast_export_required,
    check_encrypted_fast_export, check_format_unsupported, check_format_with_fast_export, check_bucket_url_invalid,
    check_bucket_not_found, check_bucket_region_mismatch, check_bucket_not_standard, check_object_exists,
    check_object_extension_mismatch, check_already_exporting,
)  # fmt: skip


def loop_preflight(
    records: Sequence[Mapping[str, Any]],
    *,
    bucket_url: str,
    file_format: str | None = None,
    quick: bool = False,
    region: str | None = None,
) -> pd.DataFrame:
    """The same violations as ``preflight`` (no client), record by record and rule by rule."""
    profile = profile_for(region)
    rows = []
    for record in records:
        image = parse_record(record)
        target = target_for(image, bucket_url, file_format, quick, region)
        for check in LOOP_CHECKS:
            found = check(image, target, profile)
            if found is not None:
                rows.append(found)
    return pd.DataFrame(rows, columns=list(VIOLATION_COLUMNS))
