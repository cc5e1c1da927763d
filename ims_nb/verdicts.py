"""Per-image verdicts from a plan's violations: exportable or not, the blocking rules, the recommended mode."""

from __future__ import annotations

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.rules import Severity
from ims_nb.vocab import NORMAL_EXPORT_LIMIT

SUMMARY_COLUMNS = ("image_id", "name", "bucket_url", "exportable", "blocking", "warnings", "recommended")
_ROW = "row"  # position of the plan row a violation belongs to (internal to preflight)


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
