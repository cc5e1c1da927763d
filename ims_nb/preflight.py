"""``preflight``: which exports the service would refuse, and why, before anything is sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ConfigError
from ims_nb.frames import images_frame
from ims_nb.rules import (
    NORMAL_EXPORT_LIMIT,
    RULES,
    SIMULATOR_PROFILE,
    RegionProfile,
    Rule,
    Severity,
    bucket_url_problem,
    profile_for,
)

VIOLATION_COLUMNS = ("image_id", "rule", "severity", "message", "code", "fix")
SUMMARY_COLUMNS = ("image_id", "name", "bucket_url", "exportable", "blocking", "warnings", "recommended")
KEY_FIELDS = ("name", "id", "id8", "ext", "platform", "format")


def as_images_frame(images: Any, client: Any = None) -> pd.DataFrame:
    """The images frame from a frame, a list of raw records, or a list of image ids (looked up via ``client``)."""
    if isinstance(images, pd.DataFrame):
        missing = [c for c in ("id", "name", "status") if c not in images.columns]
        if missing:
            raise ConfigError(f"the images frame lacks column(s) {', '.join(missing)}; use client.images()")
        return images.reset_index(drop=True)
    if isinstance(images, str | Mapping):
        images = [images]
    items = list(images)
    if all(isinstance(item, str) for item in items) and items:
        if client is None:
            raise ConfigError("image ids need a client to look them up: preflight(ids, ..., client=client)")
        return images_frame([client.image(image_id) for image_id in items])
    if not all(isinstance(item, Mapping) for item in items):
        raise ConfigError("images must be a DataFrame, a list of image records, or a list of image ids")
    return images_frame(items)


def expand_keys(frame: pd.DataFrame, key_template: str, extension: pd.Series) -> pd.Series:
    """Object keys from a template such as ``exports/{name}-{id8}.{ext}`` (one per image)."""
    try:
        key_template.format(**dict.fromkeys(KEY_FIELDS, "x"))
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"key template {key_template!r} is invalid ({exc}); fields: {', '.join(KEY_FIELDS)}"
        ) from None
    if "{" not in key_template:
        return pd.Series(key_template, index=frame.index, dtype="string")
    names = frame["name"].fillna("image").astype(str).str.replace(r"[^A-Za-z0-9._-]+", "-", regex=True)
    values = {
        "name": names, "id": frame["id"].astype(str), "id8": frame["id"].astype(str).str[:8], "ext": extension,
        "platform": frame["platform"].fillna("other").astype(str).str.replace(" ", "-"),
        "format": extension,
    }  # fmt: skip
    rows = zip(*(values[f].tolist() for f in KEY_FIELDS), strict=True)
    return pd.Series([key_template.format(**dict(zip(KEY_FIELDS, row, strict=True))) for row in rows],
                     index=frame.index, dtype="string")  # fmt: skip


def build_plan(
    frame: pd.DataFrame,
    *,
    bucket_url: str,
    file_format: str | None,
    quick: bool | Sequence[bool],
    region: str | None,
    project_id: str | None,
) -> pd.DataFrame:
    """The images with their target: bucket, key, format and fast-export choice per row."""
    if not isinstance(bucket_url, str):
        raise ConfigError(f"bucket_url must be a string 'bucket:key-or-template', not {type(bucket_url).__name__}")
    plan = frame.copy()
    plan["quick"] = pd.Series(quick, index=plan.index, dtype=bool) if not isinstance(quick, bool) else quick
    plan["file_format"] = pd.Series(file_format, index=plan.index, dtype="string")
    extension = plan["file_format"].where(~plan["quick"], "zvhd2").fillna("").astype(str)
    bucket, sep, template = bucket_url.partition(":")
    plan["bucket"] = pd.Series(bucket, index=plan.index, dtype="string")
    plan["key"] = expand_keys(plan, template, extension) if sep else pd.Series(pd.NA, index=plan.index, dtype="string")
    plan["bucket_url"] = plan["bucket"] + ":" + plan["key"].fillna("") if sep else bucket_url
    problems = {url: bucket_url_problem(url) for url in plan["bucket_url"].unique()}
    plan["bucket_url_code"] = plan["bucket_url"].map(lambda u: problems[u][0]).astype("string")
    plan["bucket_url_problem"] = plan["bucket_url"].map(lambda u: problems[u][1]).astype("string")
    plan["expected_extension"] = extension
    plan["region"] = region
    plan["project_id"] = pd.Series(project_id, index=plan.index, dtype="string")
    for column, dtype in (
        ("bucket_exists", "boolean"),
        ("bucket_region", "string"),
        ("bucket_class", "string"),
        ("object_exists", "boolean"),
        ("exporting", "boolean"),
        ("exporting_job", "string"),
    ):
        plan[column] = pd.Series(pd.NA, index=plan.index, dtype=dtype)  # fmt: skip
    return plan


def lookup_targets(plan: pd.DataFrame, client: Any) -> None:
    """Fill the bucket and object columns with one lookup per bucket and one per target object."""
    valid = plan["bucket_url_code"].isna()
    for name in plan.loc[valid, "bucket"].unique():
        info = client.bucket(name)
        rows = plan["bucket"] == name
        plan.loc[rows, "bucket_exists"] = info.exists
        plan.loc[rows, "bucket_region"] = info.region
        plan.loc[rows, "bucket_class"] = info.storage_class
    reachable = valid & plan["bucket_exists"].fillna(False).astype(bool)
    for (bucket, key), rows in plan[reachable].groupby(["bucket", "key"]).groups.items():
        plan.loc[rows, "object_exists"] = client.object_exists(bucket, key)
    running = getattr(client, "exports_in_progress", None)
    if running is not None:
        live = running()
        plan["exporting_job"] = plan["id"].map(live).astype("string")
        plan["exporting"] = plan["exporting_job"].notna()


def evaluate(plan: pd.DataFrame, profile: RegionProfile, rules: Iterable[Rule] = RULES) -> pd.DataFrame:
    """The long violations frame: one row per (image, rule) that fires."""
    parts = []
    for rule in rules:
        hits = rule.check(plan, profile)
        if not hits.any():
            continue
        rows = plan[hits]
        severity = pd.Series(rule.severity.value, index=rows.index, dtype="string")
        if rule.soft is not None:
            soft = rule.soft(rows, profile)
            severity = severity.where(~soft, Severity.WARNING.value)
        codes = rule.codes(rows) if rule.codes is not None else pd.Series(rule.code, index=rows.index)
        messages = [rule.message.format(**row) for row in rows.to_dict("records")]
        unconfirmed = severity == Severity.WARNING.value
        if rule.soft is not None and unconfirmed.any():
            note = f" (unconfirmed in region {plan['region'].iloc[0]}: {profile.source})"
            messages = [m + note if u else m for m, u in zip(messages, unconfirmed, strict=True)]
        fixes = [rule.fix.format(**row) for row in rows.to_dict("records")]
        parts.append(pd.DataFrame({"image_id": rows["id"].to_numpy(), "rule": rule.id, "severity": severity.to_numpy(),
                                   "message": messages, "code": codes.to_numpy(), "fix": fixes}))  # fmt: skip
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in VIOLATION_COLUMNS})
    return pd.concat(parts, ignore_index=True).astype("string")


def preflight(
    images: Any,
    *,
    bucket_url: str,
    file_format: str | None = None,
    quick: bool = False,
    region: str | None = None,
    client: Any = None,
) -> pd.DataFrame:
    """One row per violation: ``image_id, rule, severity, message`` (plus ``code`` and ``fix``).

    Args:
        images: ``client.images()``, a list of raw image records, or image ids (then ``client`` is needed).
        bucket_url: ``bucket:key``; the key may be a template with ``{name}``, ``{id}``, ``{id8}``, ``{ext}``,
            ``{platform}`` or ``{format}`` (one object per image).
        file_format: qcow2, vhd, zvhd or vmdk (none with fast export).
        quick: fast export.
        region: the images' region (defaults to the client's); selects the region profile.
        client: when given, the bucket, the target objects and running exports are looked up too.
    """
    plan, profile = _prepare(images, bucket_url, file_format, quick, region, client)
    return evaluate(plan, profile)[list(VIOLATION_COLUMNS)]


def _prepare(
    images: Any, bucket_url: str, file_format: str | None, quick: bool | Sequence[bool], region: str | None, client: Any
) -> tuple[pd.DataFrame, RegionProfile]:
    frame = as_images_frame(images, client)
    region = region or getattr(client, "region", None)
    project_id = getattr(client, "project_id", None)
    plan = build_plan(frame, bucket_url=bucket_url, file_format=file_format, quick=quick, region=region,
                      project_id=project_id)  # fmt: skip
    if client is not None:
        lookup_targets(plan, client)
    simulator = getattr(getattr(client, "settings", None), "is_simulator", False)
    return plan, SIMULATOR_PROFILE if simulator else profile_for(region)


def preflight_summary(
    images: Any,
    *,
    bucket_url: str,
    file_format: str | None = None,
    quick: bool = False,
    region: str | None = None,
    client: Any = None,
) -> pd.DataFrame:
    """One row per image: ``exportable``, the blocking rules, warnings, and the recommended mode.

    The recommended mode is ``fast`` for images over 128 GiB that are not encrypted, ``normal`` for the
    others, and empty when nothing would make the export succeed.
    """
    plan, profile = _prepare(images, bucket_url, file_format, quick, region, client)
    violations = evaluate(plan, profile)
    errors = violations[violations["severity"] == Severity.ERROR.value]
    warnings = violations[violations["severity"] == Severity.WARNING.value]
    blocking = errors.groupby("image_id")["rule"].agg(list)
    warned = warnings.groupby("image_id")["rule"].agg(list)
    summary = pd.DataFrame({
        "image_id": plan["id"], "name": plan["name"], "bucket_url": plan["bucket_url"].astype("string"),
    })  # fmt: skip
    summary["blocking"] = [blocking.get(i, []) for i in summary["image_id"]]
    summary["warnings"] = [warned.get(i, []) for i in summary["image_id"]]
    summary["exportable"] = pd.array([not b for b in summary["blocking"]], dtype="boolean")
    summary["recommended"] = _recommended(plan, summary["blocking"])
    return summary[list(SUMMARY_COLUMNS)]


#: Rules that no choice of mode or format can fix.
_FATAL = frozenset({"image-not-private", "image-not-active", "full-ecs-image", "iso-image", "koogallery-origin",
                    "restricted-os-origin", "size-limit"})  # fmt: skip


def _recommended(plan: pd.DataFrame, blocking: pd.Series) -> pd.Series:
    big = (plan["size_bytes"].fillna(0) > NORMAL_EXPORT_LIMIT).astype(bool)
    encrypted = plan["encrypted"].fillna(False).astype(bool)
    fatal = pd.Series([bool(_FATAL.intersection(rules)) for rules in blocking], index=plan.index)
    mode = pd.Series("normal", index=plan.index, dtype="string").where(~big, "fast")
    return mode.where(~(fatal | (big & encrypted)), pd.NA)
