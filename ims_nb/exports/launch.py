"""Launching a plan once through the ledger: reconcile doubtful rows, claim each row, send its export, report."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ims_nb.client.protocol import ClientLike

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.retry import RateLimiter
from ims_nb.errors import AuthError, ConfigError
from ims_nb.exports.decisions import plan_targets
from ims_nb.exports.estate import launch_estate
from ims_nb.exports.identity import scoped
from ims_nb.exports.leases import Kind, Lease
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.schema import COLUMNS
from ims_nb.exports.submit import (
    JOB_ID_UNKNOWN,
    in_doubt,
    note_for,
    reconcile,
    reconcile_flow,
    send_again,
    send_again_flow,
    submit,
)
from ims_nb.vocab import TRANSIENT_REFUSALS, Action, Outcome, Scope, State, Target

log = logging.getLogger("ims_nb")
REPORT_COLUMNS = ("image_id", "name", "bucket_url", "file_format", "quick", "action", "state", "row_id", "job_id",
                  "reason", "exportable", "blocking", "warnings", "messages")  # fmt: skip

#: Sending one export and settling doubtful rows live in ``ims_nb.exports.submit``; re-exported here.
__all__ = ["JOB_ID_UNKNOWN", "REPORT_COLUMNS", "in_doubt", "launch", "launch_report", "note_for", "reconcile",
           "reconcile_flow", "send_again", "send_again_flow"]  # fmt: skip


def launch(
    plan: pd.DataFrame,
    *,
    client: ClientLike | Mapping[Scope, ClientLike],
    ledger: Ledger,
    concurrency: int = 4,
    max_rate: float = 5.0,
    force: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    lease: Lease | None = None,
) -> pd.DataFrame:
    """Submit the plan's exportable rows once: each is written to the ledger before its POST.

    Rows with a live or successful export in the ledger are skipped (``force=True`` exports again); doubtful
    rows are reconciled first. At most ``concurrency`` POSTs are in flight and ``max_rate`` start per second.
    The credentials are proven before any row is claimed (``check_credentials``); an ``AuthError`` stops the
    batch: no further row is claimed, and it is raised. ``client`` may be an estate's clients (``(region,
    project_id)`` -> client): each row goes to its own scope's (``ims_nb.exports.estate``).

    The batch holds a launcher's ``lease`` (``exports.leases``; default one of its own, released at the end): its
    claimed rows' owner is the lease's holder, so other processes, on any host, know them alive until it expires.

    Returns:
        The ledger rows this call launched (or settled), one per row.
    """
    if not 1 <= concurrency <= 32:
        raise ConfigError(f"concurrency must be 1 to 32, not {concurrency}")
    if isinstance(client, Mapping):
        with _holding(ledger, lease) as held:
            return launch_estate(plan, clients=client, ledger=ledger, concurrency=concurrency, max_rate=max_rate,
                                 force=force, clock=clock, sleep=sleep, lease=held)  # fmt: skip
    missing = [c for c in ("image_id", "file_format", "quick", "exportable") if c not in plan.columns]
    if missing:
        raise ConfigError(f"the plan lacks column(s) {', '.join(missing)}; make it with plan_exports()")
    plan = plan.assign(target=plan_targets(plan))
    ledger = scoped(ledger, client, who=True)  # claims stamp the account and user; only its rows block or settle
    with _holding(ledger, lease) as held:
        return _launch_rows(plan, client, ledger, held.holder, force=force, concurrency=concurrency,
                            limiter=RateLimiter(max_rate, clock=clock), sleep=sleep)  # fmt: skip


@contextmanager
def _holding(ledger: Ledger, lease: Lease | None) -> Iterator[Lease]:
    """``lease``, or a launcher's lease of its own for the batch (released when the batch ends)."""
    if lease is not None:
        yield lease
        return
    with Lease(ledger, Kind.LAUNCHER, user=ledger.identity.who if ledger.identity else None) as own:
        yield own


def _launch_rows(
    plan: pd.DataFrame,
    client: ClientLike,
    ledger: Ledger,
    holder: str,
    *,
    force: bool,
    concurrency: int,
    limiter: RateLimiter,
    sleep: Callable[[float], None],
) -> pd.DataFrame:
    """``launch`` in one scope, its rows claimed by ``holder``: reconcile, prove the credentials, claim and send."""
    settled = reconcile(ledger, client)
    check_credentials = getattr(client, "check_credentials", None)
    if check_credentials is not None:
        check_credentials()
    claimed: list[int] = []
    lock = threading.Lock()
    refused = threading.Event()

    def one(row: dict[str, Any]) -> None:
        if refused.is_set():
            return
        row_id = ledger.claim(
            image_id=row["image_id"],
            target=row["target"],
            image_name=row.get("name"),
            file_format=_text(row["file_format"]),
            quick=bool(row["quick"]),
            size_bytes=_int(row.get("size_bytes")),
            region=_text(row.get("region")),
            project_id=_text(row.get("project_id")),
            force=force,
            owner=holder,
        )
        if row_id is None:
            return
        with lock:
            claimed.append(row_id)
        sleep(limiter.reserve())
        try:
            target: Target = row["target"]
            fields = {
                **row,
                "bucket": target.bucket,
                "object_key": target.key,
                "file_format": _text(row["file_format"]),
            }
            submit(ledger, client, row_id, fields)
        except AuthError:
            refused.set()
            raise

    rows = plan[plan["exportable"].fillna(False).astype(bool)].to_dict("records")
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ims-nb-launch") as pool:
        list(pool.map(one, rows))
    launched = [ledger.row(row_id) for row_id in sorted(claimed)]
    if len(settled):
        log.warning("reconciled %d doubtful row(s) before launching", len(settled))
    return pd.DataFrame(launched + settled.to_dict("records"), columns=list(COLUMNS))


def launch_report(
    plan: pd.DataFrame,
    *,
    client: ClientLike | Mapping[Scope, ClientLike],
    ledger: Ledger,
    force: bool = False,
    **options: Any,
) -> pd.DataFrame:
    """Launch the rows ``ledger.decide`` says to launch (``options`` as for ``launch``); one report row per plan
    row: ``action`` (launched, skipped, refused, not started, unknown), ``reason``, and its ledger row's
    ``state``, ``row_id`` and ``job_id``."""
    decisions = ledger.decide(plan, force=force)
    first_new = max((row["row_id"] for row in ledger.rows()), default=0) + 1
    chosen = plan[decisions["action"] == Action.LAUNCH]
    launched = launch(chosen, client=client, ledger=ledger, force=force, **options)
    new = {(row["image_id"], row["bucket_url"]): row for row in launched.to_dict("records")
           if row["row_id"] >= first_new}  # fmt: skip
    missed = [index for index, row in chosen.iterrows() if (row["image_id"], row["bucket_url"]) not in new]
    meanwhile = ledger.decide(plan.loc[missed], force=force) if missed else decisions.iloc[:0]
    report: list[dict[str, Any]] = []
    for index, plan_row in zip(plan.index, plan.to_dict("records"), strict=True):
        action, reason = str(decisions.at[index, "action"]), str(decisions.at[index, "reason"])
        row: dict[str, Any] | None = _decided_row(decisions, index)
        if action == Action.LAUNCH and index in meanwhile.index:  # another process claimed it since we asked
            row = _decided_row(meanwhile, index)
            action, reason = Outcome.SKIPPED, "launched meanwhile by another process" + (
                f": ledger row {row['row_id']} is {row['state']}" if row is not None else "")  # fmt: skip
        elif action == Action.LAUNCH:
            row = new[plan_row["image_id"], plan_row["bucket_url"]]
            action, reason = _outcome(row, reason)
        elif action == Action.SKIP:
            action = Outcome.SKIPPED
        report.append({
            **{name: plan_row.get(name) for name in REPORT_COLUMNS if name in plan_row}, "action": action,
            "reason": reason, "state": row["state"] if row else None, "row_id": row["row_id"] if row else None,
            "job_id": row["job_id"] if row else None,
        })  # fmt: skip
    frame = pd.DataFrame(report, columns=list(REPORT_COLUMNS))
    frame["row_id"] = frame["row_id"].astype("Int64")
    return frame


def _decided_row(decisions: pd.DataFrame, index: Any) -> dict[str, Any] | None:
    """The ledger row (id, state, job) that decided a plan row, if one did."""
    row_id = decisions.at[index, "row_id"]
    if row_id is None or row_id is pd.NA:
        return None
    return {"row_id": int(row_id), "state": decisions.at[index, "state"], "job_id": decisions.at[index, "job_id"]}


def _outcome(row: dict[str, Any], reason: str) -> tuple[Outcome, str]:
    """The report's action for a row ``launch`` claimed: launched, or why not."""
    state, code, why = row["state"], row["error_code"], row["fail_reason"] or row["note"] or ""
    if state == State.REFUSED:
        if (code or "") in TRANSIENT_REFUSALS:
            return Outcome.NOT_STARTED, f"{code}: {why}; run again to retry"
        return Outcome.REFUSED, f"refused by the service: {code}: {why}"
    if state == State.UNKNOWN:
        return Outcome.UNKNOWN, f"{why or 'the answer was lost'}; the next export or ims-nb jobs --watch settles it"
    return Outcome.LAUNCHED, reason


def _text(value: Any) -> str | None:
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else str(value)


def _int(value: Any) -> int | None:
    text = _text(value)
    return None if text is None else int(float(text))
