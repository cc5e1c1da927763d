"""Sending one claimed row's export, and settling the rows whose POST outcome is in doubt (reconcile, send again)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ims_nb.client.protocol import ClientLike

import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from ims_nb.errors import ApiError, AuthError, OutcomeUnknownError, TransportError
from ims_nb.exports.decisions import row_target
from ims_nb.exports.flows import Flow, call, drive
from ims_nb.exports.identity import scoped
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.schema import COLUMNS
from ims_nb.vocab import LIVE, TRANSIENT_REFUSALS, State

ALREADY_EXPORTING = "IMG.0148"
OBJECT_EXISTS = "IMG.0070"
#: In a row's note: an export the service accepted whose job id was never learnt (a lost answer, then IMG.0148).
JOB_ID_UNKNOWN = "job id unknown"
LOST_NOTE = (f"lost answer reconciled: the service says the image is being exported (IMG.0148); {JOB_ID_UNKNOWN}, "
             "following the target object")  # fmt: skip
FOUND_NOTE = f"lost answer reconciled: the target object exists; {JOB_ID_UNKNOWN}"


def reconcile(ledger: Ledger, client: ClientLike) -> pd.DataFrame:
    """Settle rows whose POST outcome is in doubt, before anything new is sent.

    A ``submitting`` row whose holder is gone (its lease expired, or an old-style owner's process ended: see
    ``Ledger.holders_alive``), and every ``unknown`` row, is checked: the target object in
    the bucket means the export happened (``verified``); otherwise the export is sent again, and the service
    decides: a job id (the first attempt never started), or ``IMG.0148`` (it did, and still runs: the row
    follows the target object, its job id lost). Returns the rows it settled, with a note each; a row whose
    job id will never be known says ``JOB_ID_UNKNOWN`` in its note, for good.
    """
    return drive(reconcile_flow(scoped(ledger, client)), client)  # only the rows of the client's account


def reconcile_flow(ledger: Ledger) -> Flow[pd.DataFrame]:
    """``reconcile`` without its I/O: yields the client calls it needs (see ``ims_nb.exports.flows``)."""
    rows = ledger.rows({State.SUBMITTING, State.UNKNOWN})
    alive = ledger.holders_alive(r["owner"] for r in rows if r["state"] == State.SUBMITTING)
    doubtful = [r for r in rows if r["state"] == State.UNKNOWN or r["owner"] not in alive]
    for row in doubtful:
        yield from _settle(ledger, row)
    return pd.DataFrame([ledger.row(r["row_id"]) for r in doubtful], columns=list(COLUMNS))


def send_again(ledger: Ledger, client: ClientLike, row: dict[str, Any]) -> None:
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
    size = yield from call("object_size", row["bucket"], row["object_key"])
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


def submit(ledger: Ledger, client: ClientLike, row_id: int, row: dict[str, Any], *, reconciling: bool = False) -> None:
    """Send one export for a claimed row and record what came of it."""
    drive(_submit_flow(ledger, row_id, row, reconciling=reconciling), client)


def _submit_flow(ledger: Ledger, row_id: int, row: dict[str, Any], *, reconciling: bool = False) -> Flow[None]:
    try:
        job_id = yield from call("export_image", row["image_id"], row_target(row), row["file_format"] or None,
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
        size = yield from call("object_size", row["bucket"], row["object_key"])
        ledger.update(row_id, state=State.VERIFIED, status="SUCCESS", object_size=size,
                      note=note_for(row, FOUND_NOTE))  # fmt: skip
    elif reconciling and exc.code in TRANSIENT_REFUSALS:  # flow control: ask again at the next reconciliation
        ledger.update(row_id, error_code=exc.code, fail_reason=exc.message)
    else:
        ledger.update(row_id, state=State.REFUSED, error_code=exc.code, fail_reason=exc.message)


def in_doubt(ledger: Ledger) -> pd.DataFrame:
    """Rows whose export may or may not exist right now (``unknown``, or live without a job id)."""
    rows = [r for r in ledger.rows(LIVE) if r["state"] == State.UNKNOWN or not r["job_id"]]
    return pd.DataFrame(rows, columns=list(COLUMNS))
