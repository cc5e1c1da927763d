"""Export batches, planned in one pass: targets, formats, fast-export choice, verdicts and their summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ims_nb.targets import LookupsLike

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ConfigError
from ims_nb.preflight import (
    VIOLATION_COLUMNS,
    as_images_frame,
    build_plan,
    check_profile,
    judge,
    summarise,
)
from ims_nb.rules import RegionProfile, Severity
from ims_nb.targets import BucketsLike, single
from ims_nb.vocab import DEFAULT_KEY_TEMPLATE, NORMAL_EXPORT_LIMIT, Target

PLAN_COLUMNS = ("image_id", "name", "size_gb", "bucket_url", "bucket", "object_key", "file_format", "quick",
                "exportable", "blocking", "warnings", "messages")  # fmt: skip
#: Concrete per-image targets: the name of a column of the images, or image id -> ``Target`` or ``bucket:key``.
TargetsLike = str | Mapping[str, "Target | str"]


@dataclass(frozen=True)
class Review:
    """A planned batch from one round of lookups: ``plan`` (one row per image, as ``plan_exports``), its
    ``violations`` (as ``preflight``) and its ``summary`` (as ``preflight_summary``); ``decisions``: what a
    ledger holds of each row's export (``Ledger.decide``, same index), when a ledger was consulted."""

    plan: pd.DataFrame
    violations: pd.DataFrame
    summary: pd.DataFrame
    decisions: pd.DataFrame | None = None


def plan_exports(
    images: Any,
    *,
    bucket: BucketsLike | None = None,
    key_template: str | None = None,
    targets: TargetsLike | None = None,
    file_format: str | None | Sequence[str | None] = "qcow2",
    quick: bool | str | Sequence[bool] = "auto",
    region: str | None = None,
    client: LookupsLike | None = None,
    profile: RegionProfile | None = None,
) -> pd.DataFrame:
    """One row per image: its target, format, fast-export choice and preflight verdict.

    Args:
        images: ``client.images()``, raw records, or ids (with ``client``).
        bucket: the target bucket (with ``key_template``): a name, a template of ``{region}`` and ``{project}``
            (``backup-{region}``), or a mapping of region to bucket (an estate frame's rows: each its region's).
        key_template: the object key per image (fields ``{name}``, ``{id}``, ``{id8}``, ``{ext}``, ``{platform}``,
            ``{format}``, ``{region}``, ``{project}``; default ``DEFAULT_KEY_TEMPLATE``); two images may not get
            the same key.
        targets: instead of ``bucket`` and ``key_template``, each image's own target: the name of a column of
            ``images``, or a mapping of image id to ``Target`` or ``bucket:key`` (keys taken as they are).
        file_format: the format of normal exports (qcow2, vhd, zvhd, vmdk), or one per image.
        quick: ``"auto"`` takes fast export where an image needs it (over 128 GiB) and allows it (not encrypted);
            True or False forces the choice for every image; or one boolean per image.
        client: when given, the bucket and the target objects are checked too; with an estate's clients
            (``(region, project_id)`` -> client), each row's in its own region.
        profile: the region profile to judge by (default: each row's region's, or the simulator's strict one).
    """
    return review(images, bucket=bucket, key_template=key_template, targets=targets, file_format=file_format,
                  quick=quick, region=region, client=client, profile=profile).plan  # fmt: skip


def review(
    images: Any,
    *,
    bucket: BucketsLike | None = None,
    key_template: str | None = None,
    targets: TargetsLike | None = None,
    file_format: str | None | Sequence[str | None] = "qcow2",
    quick: bool | str | Sequence[bool] = "auto",
    region: str | None = None,
    client: LookupsLike | None = None,
    profile: RegionProfile | None = None,
    shared_targets: bool = False,
) -> Review:
    """``plan_exports``, the violations behind its verdicts (rule, severity, message, code, fix) and the summary
    (as ``preflight_summary``), from one round of bucket and object lookups. Arguments as for ``plan_exports``;
    ``shared_targets`` allows several images one target (``preflight`` warns of it instead)."""
    check_profile(profile)
    one = single(client)
    frame = as_images_frame(images, one)
    region = region or getattr(one, "region", None)
    plan = build_plan(frame, **_target_arguments(images, frame, bucket, key_template, targets),
                      file_format=file_format, quick=quick_choice(frame, quick), region=region,
                      project_id=getattr(one, "project_id", None))  # fmt: skip
    plan["file_format"] = plan["file_format"].where(~plan["quick"], pd.NA)
    if not shared_targets:
        _refuse_duplicate_targets(plan, templated=targets is None)
    violations = judge(plan, client, profile)
    summary = summarise(plan, violations).reset_index(drop=True)
    return Review(_plan_frame(plan, violations), violations[list(VIOLATION_COLUMNS)].reset_index(drop=True), summary)


def quick_choice(frame: pd.DataFrame, quick: Any) -> bool | list[bool]:
    """The fast-export choice: one for every image, or one per image (``"auto"``: where needed and allowed)."""
    if quick == "auto" and isinstance(quick, str):
        big = (frame["size_bytes"].fillna(0) > NORMAL_EXPORT_LIMIT).astype(bool)
        return list((big & ~frame["encrypted"].fillna(False).astype(bool)).tolist())
    if isinstance(quick, bool | np.bool_):
        return bool(quick)
    if isinstance(quick, Sequence) and not isinstance(quick, str):
        return list(quick)
    raise ConfigError(f"quick must be 'auto', True or False, not {quick!r}")


def _target_arguments(
    images: Any, frame: pd.DataFrame, bucket: BucketsLike | None, key_template: str | None, targets: Any
) -> dict[str, Any]:
    """``build_plan``'s target arguments: ``bucket`` and ``key_template``, or ``targets``, one per image."""
    if targets is None:
        if not isinstance(bucket, str | Mapping):
            raise ConfigError(f"bucket must be a bucket name or region -> bucket (or give targets=), not {bucket!r}")
        template = DEFAULT_KEY_TEMPLATE if key_template is None else key_template
        return {"bucket": bucket, "key_template": template}
    if bucket is not None or key_template is not None:
        raise ConfigError("give bucket and key_template, or targets, not both")
    if isinstance(targets, str):
        if isinstance(images, pd.DataFrame) and targets in images.columns:
            return {"targets": images[targets].tolist()}
        raise ConfigError(f"targets={targets!r} names no column of the images frame")
    if not isinstance(targets, Mapping):
        raise ConfigError(f"targets must be a column name or a mapping of image id to target, not {targets!r}")
    missing = [image_id for image_id in frame["id"] if image_id not in targets]
    if missing:
        raise ConfigError(f"no target for image(s) {', '.join(map(str, missing[:3]))}")
    return {"targets": [targets[image_id] for image_id in frame["id"]]}


def _refuse_duplicate_targets(plan: pd.DataFrame, *, templated: bool) -> None:
    counts = plan["bucket_url"].value_counts()
    twice = counts[counts > 1]
    if len(twice):
        examples = ", ".join(twice.index[:3].astype(str))
        fix = "add {id8} or {id} to it" if templated else "one target per image"
        what = "the key template gives" if templated else "the targets give"
        raise ConfigError(f"{what} {len(twice)} target(s) to several images (e.g. {examples}); {fix}")


def _plan_frame(plan: pd.DataFrame, violations: pd.DataFrame) -> pd.DataFrame:
    errors = violations[violations["severity"] == Severity.ERROR.value]
    warnings = violations[violations["severity"] == Severity.WARNING.value]
    blocking = errors.groupby("image_id")["rule"].agg(list)
    warned = warnings.groupby("image_id")["rule"].agg(list)
    messages = violations.groupby("image_id")["message"].agg(list)
    out = pd.DataFrame({
        "image_id": plan["id"], "name": plan["name"], "size_gb": plan["size_gb"],
        "bucket_url": plan["bucket_url"].astype("string"), "bucket": plan["bucket"].astype("string"),
        "object_key": plan["key"].astype("string"), "file_format": plan["file_format"].astype("string"),
        "quick": plan["quick"].astype(bool),
    })  # fmt: skip
    out["blocking"] = [blocking.get(i, []) for i in out["image_id"]]
    out["warnings"] = [warned.get(i, []) for i in out["image_id"]]
    out["messages"] = [messages.get(i, []) for i in out["image_id"]]
    out["exportable"] = pd.array([not b for b in out["blocking"]], dtype="boolean")
    out["size_bytes"] = plan["size_bytes"]
    out["region"], out["project_id"] = plan["region"], plan["project_id"]
    return out[[*PLAN_COLUMNS, "size_bytes", "region", "project_id"]]
