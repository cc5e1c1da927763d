"""``preflight``: which exports the service would refuse, and why, before anything is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ims_nb.client.protocol import LookupLike
    from ims_nb.targets import LookupsLike

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.config import on_simulator
from ims_nb.errors import ConfigError
from ims_nb.preflight_plan import IMAGE_RULE_COLUMNS, as_images_frame, build_plan, check_arguments
from ims_nb.rules import RULES, SIMULATOR_PROFILE, RegionProfile, Rule, Severity, fill, profile_for
from ims_nb.targets import lookup_scope, scope_rows, single
from ims_nb.vocab import NORMAL_EXPORT_LIMIT

#: How the plan is built lives in ``ims_nb.preflight_plan``; its public names are re-exported, so callers import
#: every preflight name from this module.
__all__ = ["IMAGE_RULE_COLUMNS", "SUMMARY_COLUMNS", "VIOLATION_COLUMNS", "as_images_frame", "build_plan",
           "check_profile", "evaluate", "judge", "preflight", "preflight_summary", "profile_of",
           "summarise"]  # fmt: skip

VIOLATION_COLUMNS = ("image_id", "rule", "severity", "message", "code", "fix")
SUMMARY_COLUMNS = ("image_id", "name", "bucket_url", "exportable", "blocking", "warnings", "recommended")
_ROW = "row"  # position of the plan row a violation belongs to (internal)


def check_profile(profile: Any) -> None:
    """ConfigError unless ``profile`` is None or a ``RegionProfile`` (``rules.STRICT``, ``SIMULATOR_PROFILE``, ...)."""
    if profile is not None and not isinstance(profile, RegionProfile):
        raise ConfigError(f"profile must be a RegionProfile, not {type(profile).__name__}")


def evaluate(plan: pd.DataFrame, profile: RegionProfile, rules: Iterable[Rule] = RULES) -> pd.DataFrame:
    """The long violations frame: one row per (image, rule) that fires."""
    return _violations(plan, profile, rules).drop(columns=_ROW)


def _violations(plan: pd.DataFrame, profile: RegionProfile, rules: Iterable[Rule] = RULES) -> pd.DataFrame:
    """``evaluate`` plus the position of each violation's plan row."""
    parts = []
    positions = pd.Series(np.arange(len(plan)), index=plan.index)
    for rule in rules:
        hits = rule.check(plan, profile)
        if not hits.any():
            continue
        rows = plan[hits]
        severity = pd.Series(rule.severity.value, index=rows.index, dtype="string")
        messages = fill(rule.message, rows)
        if rule.soft is not None:
            soft = rule.soft(rows, profile).to_numpy(dtype=bool)
            severity = severity.where(~soft, Severity.WARNING.value)
            region = rows["region"].iloc[0]
            note = f" (unconfirmed{'' if pd.isna(region) else f' in region {region}'}: {profile.source})"
            messages = [m + note if s else m for m, s in zip(messages, soft, strict=True)]
        codes = rule.codes(rows) if rule.codes is not None else pd.Series(rule.code, index=rows.index)
        parts.append(pd.DataFrame({"image_id": rows["id"].to_numpy(), "rule": rule.id, "severity": severity.to_numpy(),
                                   "message": messages, "code": codes.to_numpy(), "fix": fill(rule.fix, rows),
                                   _ROW: positions[hits].to_numpy()}))  # fmt: skip
    if not parts:
        empty = {c: pd.Series(dtype="string") for c in VIOLATION_COLUMNS}
        return pd.DataFrame({**empty, _ROW: pd.Series(dtype="int64")})
    found = pd.concat(parts, ignore_index=True)
    return found.astype({c: "string" for c in VIOLATION_COLUMNS})


def preflight(
    images: Any,
    *,
    bucket_url: str,
    file_format: str | None = None,
    quick: bool = False,
    region: str | None = None,
    client: LookupsLike | None = None,
    profile: RegionProfile | None = None,
) -> pd.DataFrame:
    """One row per violation: ``image_id, rule, severity, message`` (plus ``code`` and ``fix``).

    Args:
        images: ``client.images()``, a list of raw image records, or image ids (then ``client`` is needed).
        bucket_url: ``bucket:key``; the key may be a template with ``{name}``, ``{id}``, ``{id8}``, ``{ext}``,
            ``{platform}`` or ``{format}`` (one object per image).
        file_format: qcow2, vhd, zvhd or vmdk (none with fast export).
        quick: fast export.
        region: the images' region (defaults to the client's); selects the region profile. An estate frame's
            rows (with ``region`` and ``project_id`` columns) are each judged by their own region's.
        client: when given, the bucket, the target objects and running exports are looked up too; an estate's
            clients (``(region, project_id)`` -> client) look each row up in its own region.
        profile: the region profile to judge by, overriding the one ``region`` selects
            (``rules.SIMULATOR_PROFILE`` for the embedded simulator, ``rules.STRICT``, ...).

    Raises:
        ConfigError: the images, ``bucket_url``'s key template or another argument is malformed.
    """
    plan = _prepare(images, bucket_url, file_format, quick, region, client, profile)
    return judge(plan, client, profile)[list(VIOLATION_COLUMNS)]


def _prepare(
    images: Any,
    bucket_url: str,
    file_format: str | None,
    quick: bool | Sequence[bool],
    region: str | None,
    client: LookupsLike | None,
    profile: RegionProfile | None,
) -> pd.DataFrame:
    check_profile(profile)
    check_arguments(bucket_url, None, quick, region)
    one = single(client)
    frame = as_images_frame(images, one)
    region = region or getattr(one, "region", None)
    project_id = getattr(one, "project_id", None)
    return build_plan(frame, bucket_url=bucket_url, file_format=file_format, quick=quick, region=region,
                      project_id=project_id)  # fmt: skip


def judge(plan: pd.DataFrame, client: LookupsLike | None, profile: RegionProfile | None) -> pd.DataFrame:
    """The violations of a plan after one round of lookups (with a client), each with its plan row's position.

    Each region's rows are judged by ``profile``, else by their region's (``profile_of``); ``client`` is one
    client or an estate's clients (``(region, project_id)`` -> client: each scope's lookups go to its own).
    ``summarise`` turns them into the per-image summary; dropping the position gives ``preflight``'s frame.
    """
    parts = []
    for rows in list(scope_rows(plan, client)):
        lookup_scope(plan, rows)
        part = plan if len(rows.positions) == len(plan) else plan.iloc[rows.positions]
        found = _violations(part, profile or profile_of(rows.client, rows.region))
        found[_ROW] = rows.positions[found[_ROW].to_numpy()]
        parts.append(found)
    if not parts:  # no rows: the empty frame, with its columns
        return _violations(plan, profile or profile_of(single(client)))
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def profile_of(client: LookupLike | None, region: str | None = None) -> RegionProfile:
    """The profile a client's exports are judged by: the simulator's strict one, else its region's."""
    if on_simulator(client):
        return SIMULATOR_PROFILE
    return profile_for(region or getattr(client, "region", None))


def preflight_summary(
    images: Any,
    *,
    bucket_url: str,
    file_format: str | None = None,
    quick: bool = False,
    region: str | None = None,
    client: LookupsLike | None = None,
    profile: RegionProfile | None = None,
) -> pd.DataFrame:
    """One row per image: ``exportable``, the blocking rules, warnings, and the recommended mode.

    The recommended mode is ``fast`` for images over 128 GiB that are not encrypted, ``normal`` for the
    others, and empty when nothing would make the export succeed. Arguments as for ``preflight``.
    """
    plan = _prepare(images, bucket_url, file_format, quick, region, client, profile)
    return summarise(plan, judge(plan, client, profile))


def summarise(plan: pd.DataFrame, violations: pd.DataFrame) -> pd.DataFrame:
    """``preflight_summary``'s frame from a plan and its violations (as ``judge`` gives them)."""
    errors = violations[violations["severity"] == Severity.ERROR.value]
    warnings = violations[violations["severity"] == Severity.WARNING.value]
    blocking = errors.groupby(_ROW)["rule"].agg(list)
    warned = warnings.groupby(_ROW)["rule"].agg(list)
    summary = pd.DataFrame({
        "image_id": plan["id"].astype("string"), "name": plan["name"].astype("string"),
        "bucket_url": plan["bucket_url"].astype("string"),
    })  # fmt: skip
    rows = range(len(plan))
    summary["blocking"] = pd.Series([blocking.get(i, []) for i in rows], index=plan.index, dtype=object)
    summary["warnings"] = pd.Series([warned.get(i, []) for i in rows], index=plan.index, dtype=object)
    summary["exportable"] = pd.array([not b for b in summary["blocking"]], dtype="boolean")
    summary["recommended"] = _recommended(plan, summary["blocking"])
    return summary[list(SUMMARY_COLUMNS)]


#: Rules that no choice of mode or format can fix.
_FATAL = frozenset({"image-not-private", "image-not-active", "full-ecs-image", "iso-image", "koogallery-origin",
                    "restricted-os-origin", "size-limit"})  # fmt: skip


def _recommended(plan: pd.DataFrame, blocking: pd.Series) -> pd.Series:
    big = (plan["size_bytes"].fillna(0) > NORMAL_EXPORT_LIMIT).astype(bool)
    encrypted = plan["encrypted"].fillna(False).astype(bool)
    fatal = pd.Series([bool(_FATAL.intersection(rules)) for rules in blocking], index=plan.index, dtype=bool)
    mode = pd.Series("normal", index=plan.index, dtype="string").where(~big, "fast")
    return mode.where(~(fatal | (big & encrypted)), pd.NA)
