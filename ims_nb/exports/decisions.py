"""What a launch would do with each export: launch, skip (live or done in the ledger) or refused, and why."""

from __future__ import annotations

from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ConfigError
from ims_nb.vocab import BLOCKING, LIVE, TRANSIENT_REFUSALS, Action, State, Target


def row_target(row: dict[str, Any]) -> Target:
    """The target of a ledger row (or of a plan row)."""
    return Target(row["bucket"], row["object_key"])


def plan_targets(plan: pd.DataFrame) -> list[Target]:
    """The target of each plan row: its ``bucket`` and ``object_key`` (a frame with ``bucket_url`` only is parsed)."""
    if {"bucket", "object_key"} <= set(plan.columns):
        return [Target(b, k) for b, k in zip(plan["bucket"], plan["object_key"], strict=True)]
    if "bucket_url" not in plan.columns:
        raise ConfigError("the plan lacks column(s) bucket, object_key; make it with plan_exports()")
    return [Target.parse(url) for url in plan["bucket_url"]]


def decide_rows(plan: pd.DataFrame, rows: list[dict[str, Any]], *, force: bool = False) -> pd.DataFrame:
    """``Ledger.decide`` over given ledger rows (none: a ledger that does not exist yet)."""
    by_image: dict[str, list[dict[str, Any]]] = {}
    for ledger_row in rows:
        by_image.setdefault(ledger_row["image_id"], []).append(ledger_row)
    exportable = plan["exportable"] if "exportable" in plan else pd.Series(True, index=plan.index)
    blocking = plan["blocking"] if "blocking" in plan else pd.Series([[]] * len(plan), index=plan.index)
    found = []
    for image_id, target, ok, rules in zip(plan["image_id"], plan_targets(plan), exportable, blocking, strict=True):
        refused_by = None if bool(ok) else list(rules)
        action, reason, row = verdict(by_image.get(image_id, []), image_id, target, force=force, refused_by=refused_by)
        found.append((action.value, reason, *(row[c] if row else None for c in ("row_id", "state", "job_id"))))
    frame = pd.DataFrame(found, index=plan.index, columns=list(DECISION_COLUMNS))
    return frame.astype({"row_id": "Int64"})


#: ``Ledger.decide``'s columns.
DECISION_COLUMNS = ("action", "reason", "row_id", "state", "job_id")


def blocks(row: dict[str, Any]) -> bool:
    """Whether a ledger row blocks a new launch of its export (live, done, or refused for good)."""
    transient = row["state"] == State.REFUSED and (row["error_code"] or "") in TRANSIENT_REFUSALS
    return row["state"] in BLOCKING and not transient


def verdict(
    rows: list[dict[str, Any]],
    image_id: str,
    target: Target,
    *,
    force: bool = False,
    refused_by: list[str] | None = None,
) -> tuple[Action, str, dict[str, Any] | None]:
    """What a launch of one export would do, from the ledger rows of its image (oldest first), and why; with
    the row that decided a skip or refusal. ``refused_by``: the rules by which preflight refuses it."""
    mine = [row for row in rows if row["image_id"] == image_id]
    same = [row for row in mine if row_target(row) == target]
    prior = None if force else next((row for row in reversed(same) if blocks(row)), None)
    if prior is not None:
        where = f"ledger row {prior['row_id']} is {prior['state']}" + (
            f" (job {prior['job_id']})" if prior["job_id"] else ""
        )
        if prior["state"] == State.REFUSED:
            return Action.REFUSED, (f"refused by the service before ({where}): {prior['error_code']}: "
                                    f"{prior['fail_reason']}; --force sends it again"), prior  # fmt: skip
        if prior["state"] in LIVE:
            return Action.SKIP, f"already being exported: {where}", prior
        return Action.SKIP, f"already exported: {where}; --force exports again", prior
    if refused_by is not None:
        return Action.REFUSED, "preflight: " + ", ".join(refused_by), None
    other = next((row for row in reversed(mine) if row["state"] in LIVE), None)
    if other is not None and row_target(other) != target:  # one export per image at a time (IMG.0148)
        return Action.REFUSED, (f"already being exported to {other['bucket_url']} (ledger row {other['row_id']} is "
                                f"{other['state']}): wait until it ends"), None  # fmt: skip
    return Action.LAUNCH, "" if not same else f"again: ledger row {same[-1]['row_id']} is {same[-1]['state']}", None
