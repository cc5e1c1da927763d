"""Export batches: plan (targets, formats, verdicts), reconcile doubtful rows, launch through the ledger once."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.client.retry import RateLimiter
from ims_nb.errors import ApiError, AuthError, ConfigError, OutcomeUnknownError, TransportError
from ims_nb.exports.flows import Flow, call, drive
from ims_nb.exports.identity import scoped
from ims_nb.exports.ledger import COLUMNS, Ledger, owner_alive
from ims_nb.preflight import (
    VIOLATION_COLUMNS,
    as_images_frame,
    build_plan,
    check_profile,
    evaluate,
    lookup_targets,
    profile_of,
)
from ims_nb.rules import RegionProfile, Severity
from ims_nb.vocab import DEFAULT_KEY_TEMPLATE, LIVE, NORMAL_EXPORT_LIMIT, TRANSIENT_REFUSALS, State

log = logging.getLogger("ims_nb")
PLAN_COLUMNS = ("image_id", "name", "size_gb", "bucket_url", "file_format", "quick", "exportable", "blocking",
                "warnings", "messages")  # fmt: skip
ALREADY_EXPORTING = "IMG.0148"
OBJECT_EXISTS = "IMG.0070"
#: In a row's note: an export the service accepted whose job id was never learnt (a lost answer, then IMG.0148).
JOB_ID_UNKNOWN = "job id unknown"
LOST_NOTE = (f"lost answer reconciled: the service says the image is being exported (IMG.0148); {JOB_ID_UNKNOWN}, "
             "following the target object")  # fmt: skip
FOUND_NOTE = f"lost answer reconciled: the target object exists; {JOB_ID_UNKNOWN}"


@dataclass(frozen=True)
class Review:
    """A planned batch: ``plan`` (one row per image, as ``plan_exports``) and its ``violations`` (as ``preflight``)."""

    plan: pd.DataFrame
    violations: pd.DataFrame


def plan_exports(
    images: Any,
    *,
    bucket: str,
    key_template: str = DEFAULT_KEY_TEMPLATE,
    file_format: str = "qcow2",
    quick: bool | str = "auto",
    region: str | None = None,
    client: Any = None,
    profile: RegionProfile | None = None,
) -> pd.DataFrame:
    """One row per image: its target, format, fast-export choice and preflight verdict.

    Args:
        images: ``client.images()``, raw records, or ids (with ``client``).
        bucket: the target bucket.
        key_template: the object key per image (fields ``{name}``, ``{id}``, ``{id8}``, ``{ext}``, ``{platform}``,
            ``{format}``); two images may not get the same key.
        file_format: the format of normal exports (qcow2, vhd, zvhd, vmdk).
        quick: ``"auto"`` takes fast export where an image needs it (over 128 GiB) and allows it (not encrypted);
            True or False forces the choice for every image.
        client: when given, the bucket and the target objects are checked too.
        profile: the region profile to judge by (default: the region's, or the simulator's strict one).
    """
    return review(images, bucket=bucket, key_template=key_template, file_format=file_format, quick=quick,
                  region=region, client=client, profile=profile).plan  # fmt: skip


def review(
    images: Any,
    *,
    bucket: str,
    key_template: str = DEFAULT_KEY_TEMPLATE,
    file_format: str = "qcow2",
    quick: bool | str = "auto",
    region: str | None = None,
    client: Any = None,
    profile: RegionProfile | None = None,
) -> Review:
    """``plan_exports`` and the violations behind its verdicts (rule, severity, message, code, fix), from one
    round of bucket and object lookups. Arguments as for ``plan_exports``."""
    if quick not in ("auto", True, False):
        raise ConfigError(f"quick must be 'auto', True or False, not {quick!r}")
    check_profile(profile)
    frame = as_images_frame(images, client)
    if quick == "auto":
        big = (frame["size_bytes"].fillna(0) > NORMAL_EXPORT_LIMIT).astype(bool)
        choice = (big & ~frame["encrypted"].fillna(False).astype(bool)).tolist()
    else:
        choice = [bool(quick)] * len(frame)
    plan = build_plan(frame, bucket_url=f"{bucket}:{key_template}", file_format=file_format, quick=choice,
                      region=region or getattr(client, "region", None),
                      project_id=getattr(client, "project_id", None))  # fmt: skip
    plan["file_format"] = plan["file_format"].where(~plan["quick"], pd.NA)
    _refuse_duplicate_targets(plan)
    if client is not None:
        lookup_targets(plan, client)
    violations = evaluate(plan, profile or profile_of(client, region))
    return Review(_plan_frame(plan, violations), violations[list(VIOLATION_COLUMNS)].reset_index(drop=True))


def _refuse_duplicate_targets(plan: pd.DataFrame) -> None:
    counts = plan["bucket_url"].value_counts()
    twice = counts[counts > 1]
    if len(twice):
        examples = ", ".join(twice.index[:3].astype(str))
        raise ConfigError(f"the key template gives {len(twice)} target(s) to several images (e.g. {examples}); "
                          "add {id8} or {id} to it")  # fmt: skip


def _plan_frame(plan: pd.DataFrame, violations: pd.DataFrame) -> pd.DataFrame:
    errors = violations[violations["severity"] == Severity.ERROR.value]
    warnings = violations[violations["severity"] == Severity.WARNING.value]
    blocking = errors.groupby("image_id")["rule"].agg(list)
    warned = warnings.groupby("image_id")["rule"].agg(list)
    messages = violations.groupby("image_id")["message"].agg(list)
    out = pd.DataFrame({
        "image_id": plan["id"], "name": plan["name"], "size_gb": plan["size_gb"],
        "bucket_url": plan["bucket_url"].astype("string"), "file_format": plan["file_format"].astype("string"),
        "quick": plan["quick"].astype(bool),
    })  # fmt: skip
    out["blocking"] = [blocking.get(i, []) for i in out["image_id"]]
    out["warnings"] = [warned.get(i, []) for i in out["image_id"]]
    out["messages"] = [messages.get(i, []) for i in out["image_id"]]
    out["exportable"] = pd.array([not b for b in out["blocking"]], dtype="boolean")
    out["size_bytes"] = plan["size_bytes"]
    out["region"] = plan["region"]
    return out[[*PLAN_COLUMNS, "size_bytes", "region"]]


# --- launch -------------------------------------------------------------------------------------


def reconcile(ledger: Ledger, client: Any) -> pd.DataFrame:
    """Settle rows whose POST outcome is in doubt, before anything new is sent.

    A ``submitting`` row whose writer is gone, and every ``unknown`` row, is checked: the target object in
    the bucket means the export happened (``verified``); otherwise the export is sent again, and the service
    decides: a job id (the first attempt never started), or ``IMG.0148`` (it did, and still runs: the row
    follows the target object, its job id lost). Returns the rows it settled, with a note each; a row whose
    job id will never be known says ``JOB_ID_UNKNOWN`` in its note, for good.
    """
    return drive(reconcile_flow(scoped(ledger, client)), client)  # only the rows of the client's account


def reconcile_flow(ledger: Ledger) -> Flow[pd.DataFrame]:
    """``reconcile`` without its I/O: yields the client calls it needs (see ``ims_nb.exports.flows``)."""
    doubtful = [r for r in ledger.rows({State.SUBMITTING, State.UNKNOWN})
                if r["state"] == State.UNKNOWN or not owner_alive(r["owner"])]  # fmt: skip
    for row in doubtful:
        yield from _settle(ledger, row)
    return pd.DataFrame([ledger.row(r["row_id"]) for r in doubtful], columns=list(COLUMNS))


def send_again(ledger: Ledger, client: Any, row: dict[str, Any]) -> None:
    """Ask the service again for an export whose job id is unknown and whose object has not appeared.

    ``IMG.0148`` means the first job still runs (nothing changes). A job id means it ended without its file
    (it failed: the only way to learn that without a job listing): the export now runs again as that job,
    and the row says so.
    """
    drive(send_again_flow(ledger, row), client)


def send_again_flow(ledger: Ledger, row: dict[str, Any]) -> Flow[None]:
    """``send_again`` without its I/O (see ``ims_nb.exports.flows``)."""
    yield from _submit_flow(ledger, row["row_id"], row, reconciling=True)


def _settle(ledger: Ledger, row: dict[str, Any]) -> Flow[None]:
    bucket, _, key = row["bucket_url"].partition(":")
    size = yield from call("object_size", bucket, key)
    if size is not None:
        ledger.update(row["row_id"], state=State.VERIFIED, object_size=size, status="SUCCESS",
                      note=note_for(row, FOUND_NOTE))  # fmt: skip
        return
    yield from _submit_flow(ledger, row["row_id"], row, reconciling=True)


def note_for(row: dict[str, Any], text: str) -> str:
    """A row's new note, which keeps saying that a job id was lost once it did."""
    if JOB_ID_UNKNOWN in text or JOB_ID_UNKNOWN not in (row.get("note") or ""):
        return text
    return f"{JOB_ID_UNKNOWN} for an earlier job of this row; {text}"


def _submit(ledger: Ledger, client: Any, row_id: int, row: dict[str, Any], *, reconciling: bool = False) -> None:
    """Send one export for a claimed row and record what came of it."""
    drive(_submit_flow(ledger, row_id, row, reconciling=reconciling), client)


def _submit_flow(ledger: Ledger, row_id: int, row: dict[str, Any], *, reconciling: bool = False) -> Flow[None]:
    try:
        job_id = yield from call("export_image", row["image_id"], row["bucket_url"], row["file_format"] or None,
                                 quick=bool(row["quick"]))  # fmt: skip
    except OutcomeUnknownError as exc:
        ledger.update(row_id, state=State.UNKNOWN, note=note_for(row, f"outcome unknown: {exc.reason}"))
    except AuthError as exc:  # the credentials, not the export: record it, and stop the batch
        if not reconciling:  # a doubtful row stays in doubt: nothing was learnt about it
            code = exc.code if exc.sent else "TRANSPORT"  # never sent: a new launch may send it
            ledger.update(row_id, state=State.REFUSED, error_code=code, fail_reason=exc.message,
                          note=None if exc.sent else "not sent: the credentials were refused")  # fmt: skip
        raise
    except ApiError as exc:
        yield from _refused(ledger, row_id, row, exc, reconciling=reconciling)
    except TransportError as exc:
        if exc.sent:
            ledger.update(row_id, state=State.UNKNOWN, error_code="TRANSPORT", fail_reason=str(exc),
                          note=note_for(row, "outcome unknown: the connection broke"))  # fmt: skip
        elif reconciling:  # it never left: nothing was learnt, the row stays in doubt
            ledger.update(row_id, error_code="TRANSPORT", fail_reason=str(exc))
        else:
            ledger.update(row_id, state=State.REFUSED, error_code="TRANSPORT", fail_reason=str(exc))
    except BaseException:
        ledger.update(row_id, state=State.UNKNOWN, note=note_for(row, "interrupted while the export was being sent"))
        raise
    else:
        note = None
        if reconciling and JOB_ID_UNKNOWN in (row.get("note") or ""):
            note = f"{JOB_ID_UNKNOWN} for the first job, which ended without its file; sent again as this job"
        elif reconciling:
            note = "lost answer reconciled: no export of the image was running; sent again"
        ledger.update(row_id, state=State.SUBMITTED, job_id=job_id, status="INIT", note=note)


def _refused(ledger: Ledger, row_id: int, row: dict[str, Any], exc: ApiError, *, reconciling: bool) -> Flow[None]:
    """Record a refusal; when reconciling, IMG.0148, IMG.0070 and flow control answer the doubt instead."""
    if reconciling and exc.code == ALREADY_EXPORTING:
        ledger.update(row_id, state=State.RUNNING, status="RUNNING", note=note_for(row, LOST_NOTE))
    elif reconciling and exc.code == OBJECT_EXISTS:  # the object appeared since it was looked for: the job ended
        bucket, _, key = row["bucket_url"].partition(":")
        size = yield from call("object_size", bucket, key)
        ledger.update(row_id, state=State.VERIFIED, status="SUCCESS", object_size=size,
                      note=note_for(row, FOUND_NOTE))  # fmt: skip
    elif reconciling and exc.code in TRANSIENT_REFUSALS:  # flow control: ask again at the next reconciliation
        ledger.update(row_id, error_code=exc.code, fail_reason=exc.message)
    else:
        ledger.update(row_id, state=State.REFUSED, error_code=exc.code, fail_reason=exc.message)


def launch(
    plan: pd.DataFrame,
    *,
    client: Any,
    ledger: Ledger,
    concurrency: int = 4,
    max_rate: float = 5.0,
    force: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """Submit the plan's exportable rows once: each is written to the ledger before its POST.

    Rows with a live or successful export in the ledger are skipped (``force=True`` exports again); doubtful
    rows are reconciled first. At most ``concurrency`` POSTs are in flight and ``max_rate`` start per second.
    The credentials are proven before any row is claimed (``check_credentials``); an ``AuthError`` stops the
    batch: no further row is claimed, and it is raised.

    Returns:
        The ledger rows this call launched (or settled), one per row.
    """
    if not 1 <= concurrency <= 32:
        raise ConfigError(f"concurrency must be 1 to 32, not {concurrency}")
    missing = [c for c in ("image_id", "bucket_url", "file_format", "quick", "exportable") if c not in plan.columns]
    if missing:
        raise ConfigError(f"the plan lacks column(s) {', '.join(missing)}; make it with plan_exports()")
    ledger = scoped(ledger, client)  # claims stamp the client's account; only its rows block or are reconciled
    settled = reconcile(ledger, client)
    check_credentials = getattr(client, "check_credentials", None)
    if check_credentials is not None:
        check_credentials()
    limiter = RateLimiter(max_rate, clock=clock)
    claimed: list[int] = []
    lock = threading.Lock()
    refused = threading.Event()

    def one(row: dict[str, Any]) -> None:
        if refused.is_set():
            return
        row_id = ledger.claim(
            image_id=row["image_id"],
            bucket_url=row["bucket_url"],
            image_name=row.get("name"),
            file_format=_text(row["file_format"]),
            quick=bool(row["quick"]),
            size_bytes=_int(row.get("size_bytes")),
            region=_text(row.get("region")),
            force=force,
        )
        if row_id is None:
            return
        with lock:
            claimed.append(row_id)
        sleep(limiter.reserve())
        try:
            _submit(ledger, client, row_id, {**row, "file_format": _text(row["file_format"])})
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


def in_doubt(ledger: Ledger) -> pd.DataFrame:
    """Rows whose export may or may not exist right now (``unknown``, or live without a job id)."""
    rows = [r for r in ledger.rows(LIVE) if r["state"] == State.UNKNOWN or not r["job_id"]]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _text(value: Any) -> str | None:
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else str(value)


def _int(value: Any) -> int | None:
    text = _text(value)
    return None if text is None else int(float(text))
