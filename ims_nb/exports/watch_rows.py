"""What a ledger watch's observations change: each job's ledger row, its object's check, its progress and ETA."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ims_nb.client.pacing import clock_speed
from ims_nb.errors import ApiError, ConfigError
from ims_nb.exports.flows import Flow, call
from ims_nb.exports.history import EtaModel, Progress, ProgressCallback, jobs_frame
from ims_nb.exports.launch import note_for, send_again_flow
from ims_nb.exports.ledger import Ledger
from ims_nb.vocab import State

if TYPE_CHECKING:
    from ims_nb.client.protocol import AsyncClientLike, ClientLike

__all__ = ["MAX_OBJECT_RATIO", "ClientT", "WatchRows"]
log = logging.getLogger("ims_nb")
#: A successful export's file is plausible when it is this share of the image size at most.
MAX_OBJECT_RATIO = 1.2
#: The client a ledger watch drives its flows with: ``ClientLike`` or ``AsyncClientLike``.
ClientT = TypeVar("ClientT", bound="ClientLike | AsyncClientLike")


class WatchRows(Generic[ClientT]):
    """The bookkeeping of a ledger watch (``exports.watch``): what it knows of each job it follows (``by_job``,
    ``first_seen``), and what each observation changes: the job's ledger row, its object's check, its report."""

    def __init__(self, ledger: Ledger, client: ClientT, on_progress: ProgressCallback | None) -> None:
        self.ledger, self.on_progress = ledger, on_progress
        self.client: ClientT = client
        self.eta_model: EtaModel | None = None  # built when first needed, then added to as jobs succeed
        self.by_job: dict[str, dict[str, Any]] = {}
        self.first_seen: dict[str, tuple[float, float]] = {}  # job id -> (time, percent) of this watch's first look

    def _forget_job(self, job_id: str) -> None:
        """What this watch knows of a job leaves memory (the ledger has it), so that a long watch stays flat."""
        for known in (self.by_job, self.first_seen):
            known.pop(job_id, None)

    def _follow_lost(self, row: dict[str, Any]) -> Flow[None]:
        """A job the service accepted but whose id was lost: its object, or the service's word, ends it."""
        if not (yield from self._verify(row)):
            yield from send_again_flow(self.ledger, row)

    def _refused(self, row: dict[str, Any], exc: ApiError) -> None:
        """A poll the service refused (not a passing error): the row fails, or is disowned if it was adopted."""
        if row.get("adopted_at"):  # a row claimed from before identities: this endpoint never proved it took it
            self.ledger.disown(row["row_id"], f"{exc.code} from {self.ledger.identity}: not its job; "
                                              "left for the endpoint that accepted it")  # fmt: skip
        else:
            self.ledger.update(row["row_id"], state=State.FAILED, error_code=exc.code, fail_reason=exc.message)

    def _record(self, row: dict[str, Any], record: dict[str, Any], now: float, *, stalled: bool) -> Flow[None]:
        status = str(record.get("status"))
        percent = (record.get("entities") or {}).get("process_percent")
        job_id = row["job_id"]
        self.first_seen.setdefault(job_id, (now, float(percent or 0.0)))
        state = {"FAIL": State.FAILED, "SUCCESS": State.SUCCEEDED}.get(status, State.RUNNING)
        fields: dict[str, Any] = {"status": status, "process_percent": percent, "begin_time": record.get("begin_time"),
                                  "end_time": record.get("end_time"), "state": state}  # fmt: skip
        if status == "FAIL":
            fields.update(error_code=record.get("error_code"), fail_reason=record.get("fail_reason"))
        self.ledger.update(row["row_id"], **fields)
        self.by_job[job_id] = {**row, **fields}
        if status == "SUCCESS":
            yield from self._verify(self.ledger.row(row["row_id"]))
        final = self.ledger.row(row["row_id"])
        if status == "SUCCESS" and self.eta_model is not None:
            self.eta_model.learn(final)  # the first model is built from the ledger: it holds the job already
        self._report(final, now, stalled=stalled)

    def _verify(self, row: dict[str, Any]) -> Flow[bool]:
        """Check a finished export's object: ``verified``, or ``missing``; False when there is nothing to judge."""
        key = row["object_key"]
        try:
            size = yield from call("object_size", row["bucket"], key)
        except ConfigError as exc:  # no OBS credentials (a password login): the job's word stands, unverified
            if row["job_id"] and row["state"] == State.SUCCEEDED and not row["note"]:
                self.ledger.update(row["row_id"], note=note_for(row, f"not verified: {exc}"))
            return bool(row["job_id"])
        expected = row["size_bytes"] or 0
        if size is not None and 0 < size <= max(expected, 1) * MAX_OBJECT_RATIO:
            self.ledger.update(row["row_id"], state=State.VERIFIED, object_size=size, status="SUCCESS")
            return True
        if size is None and not row["job_id"]:
            return False  # a lost job id: the job may still run
        problem = "is missing" if size is None else f"has an implausible size ({size} bytes)"
        self.ledger.update(row["row_id"], state=State.MISSING, object_size=size,
                           note=note_for(row, f"the job reported SUCCESS but the object {key} {problem}"))  # fmt: skip
        log.warning("export of %s reported SUCCESS but %s %s", row["image_name"], key, problem)
        return True

    def _report(self, row: dict[str, Any], now: float, *, stalled: bool) -> None:
        if self.on_progress is None:
            return
        job_id, state, eta = row["job_id"], row["state"], None
        if state in (State.RUNNING, State.SUBMITTED):
            self.eta_model = self.eta_model or EtaModel(jobs_frame(self.ledger), speed=clock_speed(self.client) or 1.0)
            eta = self.eta_model.eta_of(row, now, self.first_seen.get(job_id, (now, 0.0)))
        self.on_progress(Progress(row["row_id"], job_id, row["image_name"], state, row["process_percent"], eta,
                                  stalled and state == State.RUNNING, row["status"]))  # fmt: skip
