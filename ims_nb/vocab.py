"""The words every layer shares, without pandas: file formats, key templates, ledger states, job statuses, limits."""

from __future__ import annotations

from enum import StrEnum

#: Bytes in a GiB (IMS sizes are binary: ``min_disk`` and the 128 GB / 1 TB limits are GiB).
GiB = 1024**3
#: The largest image a normal (not fast) export takes.
NORMAL_EXPORT_LIMIT = 128 * GiB
#: The size from which no export is possible at all.
SIZE_LIMIT = 1024 * GiB

#: The ``file_format`` values of a normal export, as the API spells them.
FILE_FORMATS = ("qcow2", "vhd", "zvhd", "vmdk")
#: What a fast export (``is_quick_export``) writes: no format is sent, the file is ZVHD2.
FAST_EXPORT_FORMAT = "zvhd2"
#: The object key extension that matches a fast export's file.
FAST_EXPORT_EXTENSION = "zvhd2"
#: The object key of each image when none is given (fields: see ``ims_nb.preflight.expand_keys``).
DEFAULT_KEY_TEMPLATE = "{name}-{id8}.{ext}"


def written_format(file_format: str | None, quick: bool) -> str:
    """The format of the file an export writes: ``zvhd2`` for a fast export, else ``file_format`` (or '')."""
    return FAST_EXPORT_FORMAT if quick else (file_format or "")


#: The job statuses after which IMS changes a job no more.
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAIL"})
#: Seconds without progress after which a running job is flagged stalled.
STALL_AFTER = 1800.0


class State(StrEnum):
    """The state of one ledger row (the ledger's docstring draws how they follow each other)."""

    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    UNKNOWN = "unknown"
    REFUSED = "refused"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    VERIFIED = "verified"
    MISSING = "missing"
    FAILED = "failed"


#: Rows that hold (or may hold) a job the service is still running.
LIVE = frozenset({State.SUBMITTING, State.SUBMITTED, State.UNKNOWN, State.RUNNING})
#: Rows whose export produced the file.
DONE = frozenset({State.SUCCEEDED, State.VERIFIED})
#: Rows that block a new launch of the same export unless forced (a refusal blocks too: sending the same
#: export again gets the same answer, except for the transient refusals below).
BLOCKING = LIVE | DONE | {State.REFUSED}
#: Refusals worth another launch without force: flow control, throttling, a request that never left, and
#: refused credentials (the export itself was never judged: fix the keys and launch again).
TRANSIENT_REFUSALS = ("IMG.0060", "APIGW.0308", "TRANSPORT", "APIGW.0301", "APIGW.0307")
