"""Every export constraint as data: id, severity, columns read, message, fix, IMS code, source, vectorised check.

A rule's ``check(plan, profile)`` takes the preflight plan frame (one row per image and target, see
``ims_nb.preflight``) and returns a boolean Series, True where the export would be refused (or, for a
warning, is doubtful). Messages are templates over the plan's columns and are filled only for the rows
a rule flags.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.rule_parts import (
    DEFAULT_PROFILE,
    MISSING,
    REGION_PROFILES,
    SIMULATOR_PROFILE,
    STRICT,
    Check,
    Codes,
    RegionProfile,
    Rule,
    Severity,
    Verdict,
    fill,
    profile_for,
    template_fields,
)
from ims_nb.vocab import FAST_EXPORT_EXTENSION, FILE_FORMATS, NORMAL_EXPORT_LIMIT, SIZE_LIMIT, split_bucket_url

RESTRICTED_PLATFORMS = ("Windows", "SUSE", "Red Hat", "RedHat", "Ubuntu", "Oracle Linux")
SOURCE_EXPORT_PAGE = "API reference, Exporting an Image (constraints)"
SOURCE_ERROR_CODES = "API reference, Error Codes"
SOURCE_OBS_NAMING = "OBS bucket naming rules (SDK guides, console manual)"

#: The rule list and its checks live here; what a rule is (``ims_nb.rule_parts``) is re-exported, so callers
#: import every rule name from this module.
__all__ = ["DEFAULT_PROFILE", "MISSING", "REGION_PROFILES", "RESTRICTED_PLATFORMS", "RULES", "RULES_BY_ID", "RULE_IDS",
           "SIMULATOR_PROFILE", "SOURCE_ERROR_CODES", "SOURCE_EXPORT_PAGE", "SOURCE_OBS_NAMING", "STRICT", "Check",
           "Codes", "RegionProfile", "Rule", "Severity", "Verdict", "bucket_url_problem", "bucket_url_problems", "fill",
           "profile_for", "target_problem", "template_fields"]  # fmt: skip


def _flag(series: pd.Series) -> pd.Series:
    """A plain bool Series: missing (<NA>) counts as False."""
    return series.fillna(False).astype(bool)


def _is(series: pd.Series, value: Any) -> pd.Series:
    """``series == value`` with a missing value counting as "not equal" (as the service reads an absent field)."""
    return _flag(series == value)


def _public(plan: pd.DataFrame) -> pd.Series:
    """Public images (IMG.0077): gold ones, and public ones that are not KooGallery (market) images."""
    return _is(plan["image_type"], "gold") | (_is(plan["visibility"], "public") & ~_is(plan["image_type"], "market"))


def _not_private(plan: pd.DataFrame, profile: RegionProfile) -> pd.Series:
    other_owner = plan["project_id"].notna() & ~_is(plan["owner"], plan["project_id"])
    shared = _is(plan["image_type"], "shared")  # shared with you: another tenant's, project id known or not
    return _public(plan) | _is(plan["image_type"], "market") | shared | _flag(other_owner)


def _not_private_codes(plan: pd.DataFrame) -> pd.Series:
    market = _is(plan["image_type"], "market")
    return pd.Series(np.select([_public(plan), market], ["IMG.0077", "IMG.0078"], "IMG.0106"), index=plan.index)


def _restricted_origin(plan: pd.DataFrame, profile: RegionProfile) -> pd.Series:
    derived = plan["source_image_id"].notna() & plan["platform"].isin(list(RESTRICTED_PLATFORMS))
    ubuntu_ok = profile.ubuntu_derived is Verdict.ALLOWED
    return _flag(derived & ~((plan["platform"] == "Ubuntu") & ubuntu_ok))


def _ubuntu_unconfirmed(plan: pd.DataFrame, profile: RegionProfile) -> pd.Series:
    return _flag(plan["platform"] == "Ubuntu") & (profile.ubuntu_derived is Verdict.UNCONFIRMED)


def _over_normal_limit(plan: pd.DataFrame, profile: RegionProfile) -> pd.Series:
    big = _flag(plan["size_bytes"] > NORMAL_EXPORT_LIMIT) & _flag(plan["size_bytes"] < SIZE_LIMIT)
    return big & ~plan["quick"] & (profile.normal_over_128 is not Verdict.ALLOWED)


def _over_normal_unconfirmed(plan: pd.DataFrame, profile: RegionProfile) -> pd.Series:
    return pd.Series(profile.normal_over_128 is Verdict.UNCONFIRMED, index=plan.index)


def _format_unsupported(plan: pd.DataFrame, profile: RegionProfile) -> pd.Series:
    return ~plan["quick"] & ~_flag(plan["file_format"].isin(list(FILE_FORMATS)))


def _format_codes(plan: pd.DataFrame) -> pd.Series:
    """A missing ``file_format`` is a missing mandatory parameter (IMG.0001); an unknown one IMG.0072."""
    return pd.Series(np.where(plan["file_format"].isna(), "IMG.0001", "IMG.0072"), index=plan.index)


def _object_extension_mismatch(plan: pd.DataFrame, profile: RegionProfile) -> pd.Series:
    expected = plan["file_format"].where(~plan["quick"], FAST_EXPORT_EXTENSION).fillna("")
    keys = plan["key"].fillna("").str.lower()
    mismatch = pd.Series(False, index=plan.index)
    for extension in expected.unique():  # one vectorised pass per distinct extension (one or two)
        rows = (expected == extension).to_numpy(dtype=bool)
        mismatch[rows] = ~keys[rows].str.endswith("." + extension).to_numpy(dtype=bool) if extension else True
    has_key = (keys != "").to_numpy(dtype=bool)
    return _flag(mismatch & has_key & plan["bucket_url_code"].isna())


def _bucket_url_codes(plan: pd.DataFrame) -> pd.Series:
    return plan["bucket_url_code"]


RULES: tuple[Rule, ...] = (
    Rule("image-not-private", Severity.ERROR, ("image_type", "visibility", "owner"),
         "image {name} (type {image_type}, {visibility}) is owned by {owner}: only your own private images "
         "can be exported",
         "export a private copy you own", "IMG.0077", SOURCE_ERROR_CODES, _not_private, codes=_not_private_codes),
    Rule("image-not-active", Severity.ERROR, ("status",),
         "image {name} is {status}, not active", "wait until the image is active (Normal)", "IMG.0046",
         "Constraints (private image status must be Normal)", lambda p, _: ~_is(p["status"], "active")),
    Rule("full-ecs-image", Severity.ERROR, ("whole_image",),
         "image {name} is a full-ECS image", "export the system-disk and data-disk images separately",
         "IMG.0128", SOURCE_EXPORT_PAGE, lambda p, _: _flag(p["whole_image"])),
    Rule("iso-image", Severity.ERROR, ("virtual_env_type",),
         "image {name} is an ISO image", "", "IMG.0167", SOURCE_EXPORT_PAGE,
         lambda p, _: _flag(p["virtual_env_type"] == "IsoImage")),
    Rule("koogallery-origin", Severity.ERROR, ("product_code",),
         "image {name} comes from KooGallery product {product_code}", "", "IMG.0078", SOURCE_EXPORT_PAGE,
         lambda p, _: _flag(p["product_code"].notna()) & ~_is(p["image_type"], "market")),
    Rule("restricted-os-origin", Severity.ERROR, ("platform", "source_image_id"),
         "image {name} was created from the {platform} public image {source_image_id}",
         "rebuild the image from an imported image file", "IMG.0071", SOURCE_EXPORT_PAGE, _restricted_origin,
         soft=_ubuntu_unconfirmed),
    Rule("size-limit", Severity.ERROR, ("size_bytes",),
         "image {name} is {size_gb:.1f} GiB; exported images must be smaller than 1 TiB", "", "IMG.0071",
         SOURCE_EXPORT_PAGE, lambda p, _: _flag(p["size_bytes"] >= SIZE_LIMIT)),
    Rule("fast-export-required", Severity.ERROR, ("size_bytes", "quick"),
         "image {name} is {size_gb:.1f} GiB; over 128 GiB only fast export is allowed",
         "use fast export (quick=True)", "IMG.0160", SOURCE_EXPORT_PAGE, _over_normal_limit,
         soft=_over_normal_unconfirmed),
    Rule("encrypted-fast-export", Severity.ERROR, ("encrypted", "quick"),
         "image {name} is encrypted (KMS key {kms_key_id}): fast export is unavailable",
         "export normally (quick=False), or decrypt the image first", "IMG.0071", SOURCE_EXPORT_PAGE,
         lambda p, _: _flag(p["encrypted"]) & p["quick"]),
    Rule("format-unsupported", Severity.ERROR, ("file_format", "quick"),
         "file format {file_format} is not one of qcow2, vhd, zvhd, vmdk", "choose qcow2, vhd, zvhd or vmdk",
         "IMG.0072", SOURCE_EXPORT_PAGE, _format_unsupported, codes=_format_codes),
    Rule("format-with-fast-export", Severity.ERROR, ("file_format", "quick"),
         "file format {file_format} cannot be given with fast export (the file is ZVHD2)",
         "leave the format out with fast export", "IMG.0001", SOURCE_EXPORT_PAGE,
         lambda p, _: p["quick"] & p["file_format"].notna()),
    Rule("bucket-url-invalid", Severity.ERROR, ("bucket_url",),
         "bucket_url {bucket_url} is invalid: {bucket_url_problem}", "use bucket:folder/file with OBS naming rules",
         "IMG.0109", SOURCE_OBS_NAMING, lambda p, _: p["bucket_url_code"].notna(), codes=_bucket_url_codes),
    Rule("bucket-not-found", Severity.ERROR, ("bucket_exists",),
         "bucket {bucket} does not exist or is not accessible", "create the bucket, or check the name",
         "IMG.0069", SOURCE_EXPORT_PAGE, lambda p, _: _flag(p["bucket_exists"] == False)),  # noqa: E712
    Rule("bucket-region-mismatch", Severity.ERROR, ("bucket_region", "region"),
         "bucket {bucket} is in {bucket_region}, not in the image's region {region}",
         "choose a Standard bucket in {region}", "IMG.0058", SOURCE_EXPORT_PAGE,
         lambda p, _: _flag(p["bucket_region"].notna() & (p["bucket_region"] != p["region"]))),
    Rule("bucket-not-standard", Severity.ERROR, ("bucket_class",),
         "bucket {bucket} is of the {bucket_class} storage class, not STANDARD",
         "choose a Standard bucket in {region}", "IMG.0069", SOURCE_EXPORT_PAGE,
         lambda p, _: _flag(p["bucket_class"].notna() & (p["bucket_class"] != "STANDARD"))),
    Rule("object-exists", Severity.ERROR, ("object_exists",),
         "object {key} already exists in bucket {bucket}", "choose another file name, or delete the object",
         "IMG.0070", SOURCE_ERROR_CODES, lambda p, _: _flag(p["object_exists"])),
    Rule("object-extension-mismatch", Severity.WARNING, ("key", "file_format", "quick"),
         "object name {key} does not end in the format's extension", "name the file .{expected_extension}",
         None, "inferred (all documented examples match)", _object_extension_mismatch),
    Rule("already-exporting", Severity.ERROR, ("exporting",),
         "image {name} is already being exported (job {exporting_job})", "wait for that job to finish",
         "IMG.0148", SOURCE_ERROR_CODES, lambda p, _: _flag(p["exporting"])),
)  # fmt: skip
RULE_IDS = tuple(rule.id for rule in RULES)
RULES_BY_ID = {rule.id: rule for rule in RULES}


# --- bucket_url parsing (vectorised over unique URLs) ------------------------------------------

# fullmatch, not ^...$: "$" also matches before a trailing newline
_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_FILE_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_IP = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")  # "formatted like an IP address", in range or not


#: A key every IMS file-name rule accepts: segments of allowed characters, the last at most 128 long.
_PLAIN_KEY = r"(?:[A-Za-z0-9._-]+/)*[A-Za-z0-9._-]{1,128}"


def bucket_url_problems(buckets: pd.Series, keys: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(codes, problems) for columns of buckets and object keys (a missing key: no ``:`` was given), vectorised.

    Targets that plainly pass every rule are settled by one regular-expression pass; only the others (usually
    none) are examined one by one for the precise code and message.
    """
    codes = pd.Series(pd.NA, index=buckets.index, dtype="string")
    problems = pd.Series(pd.NA, index=buckets.index, dtype="string")
    if buckets.empty:
        return codes, problems
    bucket, key = buckets.astype("string"), keys.astype("string")
    bucket_ok = bucket.map({b: _bucket_problem(b) is None for b in bucket.dropna().unique()}).fillna(False)
    key_ok = key.str.fullmatch(_PLAIN_KEY).fillna(False) & (key.str.len() <= 1023).fillna(False)
    plain = bucket_ok.to_numpy(dtype=bool) & key_ok.to_numpy(dtype=bool)
    for position in np.flatnonzero(~plain):
        code, problem = target_problem(bucket.iloc[position], key.iloc[position])
        codes.iloc[position], problems.iloc[position] = code, problem
    return codes, problems


def bucket_url_problem(bucket_url: Any) -> tuple[str | None, str | None]:
    """(IMG code, what is wrong) for a ``bucket:object`` string, or (None, None) when it is valid."""
    bucket, key = split_bucket_url(bucket_url) if isinstance(bucket_url, str) else (None, None)
    return target_problem(bucket, key)


def target_problem(bucket: Any, key: Any) -> tuple[str | None, str | None]:
    """(IMG code, what is wrong) for a bucket and an object key (None or <NA>: no ``:`` was given), or (None, None)."""
    if not isinstance(bucket, str) or not isinstance(key, str):
        return "IMG.0017", "expected 'bucket:object'"
    problem = _bucket_problem(bucket)
    if problem:
        return ("IMG.0068" if not bucket else "IMG.0109"), problem
    return _key_problem(key)


def _bucket_problem(bucket: str) -> str | None:
    if not bucket:
        return "the bucket name is empty"
    if not 3 <= len(bucket) <= 63:
        return f"bucket name {bucket!r} must be 3 to 63 characters long"
    if not _BUCKET_CHARS.fullmatch(bucket):
        return f"bucket name {bucket!r} may hold only lowercase letters, digits, '-' and '.'"
    if bucket[0] in "-." or bucket[-1] in "-.":
        return f"bucket name {bucket!r} must start and end with a letter or digit"
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return f"bucket name {bucket!r} must not contain '..', '.-' or '-.'"
    if _IP.fullmatch(bucket):
        return f"bucket name {bucket!r} must not look like an IP address"
    return None


def _key_problem(key: str) -> tuple[str | None, str | None]:
    if not key or key.endswith("/"):
        return "IMG.0073", "the file name is empty"
    if " " in key:
        return "IMG.0175", f"file name {key!r} contains spaces"
    segments = key.split("/")
    if len(segments[-1]) > 128:
        return "IMG.0074", f"file name {segments[-1][:40]!r}... is longer than 128 characters"
    if len(key) > 1023:
        return "IMG.0074", f"object name {key[:40]!r}... is {len(key)} characters long, longer than 1023"
    bad = next((s for s in segments if not s or not _FILE_CHARS.fullmatch(s)), None)
    if bad is not None:
        return "IMG.0075", f"path segment {bad!r} may hold only letters, digits, '-', '.' and '_'"
    return None, None
