"""The words every layer shares, without pandas: formats, key templates, targets, ledger states, statuses, limits."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ims_nb.errors import ConfigError

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
#: The object key of each image when none is given (fields: see ``ims_nb.targets.expand_keys``).
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


class Action(StrEnum):
    """What a launch of a plan would do with one row (``Ledger.decide``)."""

    LAUNCH = "launch"
    SKIP = "skip"
    REFUSED = "refused"


class Outcome(StrEnum):
    """What came of one plan row in a launch (``ims_nb.exports.launch.launch_report``)."""

    LAUNCHED = "launched"
    SKIPPED = "skipped"
    REFUSED = "refused"
    NOT_STARTED = "not started"
    UNKNOWN = "unknown"


class Coverage(StrEnum):
    """Whether an image has a verified export whose object still exists (``ims_nb.coverage``), or why not."""

    COVERED = "covered"
    OUTSIDE = "covered (outside the ledger)"
    STALE = "stale"
    IN_PROGRESS = "in-progress"
    FAILED = "failed"
    NEVER = "never"
    NOT_EXPORTABLE = "not-exportable"


#: Coverage statuses that an export of the image would close (the gap ``ims_nb.coverage_gap_plan`` plans).
GAP = frozenset({Coverage.NEVER, Coverage.FAILED, Coverage.STALE})
#: Coverage statuses of exportable images without a current export (``ims-nb coverage`` exits 4 on any).
UNCOVERED = GAP | {Coverage.IN_PROGRESS}


#: One region's project, ``(region, project_id)``: the key of an estate's clients and of its rows.
Scope = tuple[str, str]
#: The columns of a row that name its scope (plans, ledger rows, coverage).
SCOPE_KEY = ("region", "project_id")
#: The columns an estate's images frame puts first (strings): the scope and the project's name.
SCOPE_COLUMNS = (*SCOPE_KEY, "project_name")

#: Between the bucket and the object key of a ``bucket_url`` (``bucket:key``), as the API spells it.
TARGET_SEPARATOR = ":"


def split_bucket_url(bucket_url: str) -> tuple[str, str | None]:
    """``(bucket, key)`` of a ``bucket:key`` string; key None when there is no separator.

    The one place a ``bucket_url`` is split: everything after the edge carries a ``Target`` or its parts.
    """
    bucket, separator, key = bucket_url.partition(TARGET_SEPARATOR)
    return bucket, (key if separator else None)


def _as_bucket_key(text: Any) -> str | None:
    """``bucket:key`` for what was meant as one but written as a URL or a path (``obs://bucket/x.qcow2``,
    ``bucket/x.qcow2``), else None."""
    if not isinstance(text, str):
        return None
    _, scheme, rest = text.rpartition("://")
    bucket, slash, key = (rest if scheme else text).partition("/")
    if bucket and slash and key and TARGET_SEPARATOR not in bucket:
        return f"{bucket}{TARGET_SEPARATOR}{key}"
    return None


@dataclass(frozen=True)
class Target:
    """Where one export goes: an OBS bucket and an object key (``str(target)`` is the API's ``bucket_url``).

    The OBS naming rules are judged by preflight (``ims_nb.rules``, rule ``bucket-url-invalid``), not here: a
    target the service would refuse is still a value that can be planned and reported.
    """

    bucket: str
    key: str

    @classmethod
    def parse(cls, text: Any) -> Target:
        """The target of a ``bucket:key`` string.

        Raises:
            ConfigError: ``text`` is not a string with a ``:`` in it.
        """
        if isinstance(text, Target):
            return text
        bucket, key = split_bucket_url(text) if isinstance(text, str) else ("", None)
        if key is None or _as_bucket_key(text) is not None:
            example = _as_bucket_key(text) or "my-bucket:exports/image.qcow2"
            raise ConfigError(f"use BUCKET:KEY (e.g. {example}), not {text!r}")
        return cls(bucket, key)

    @property
    def bucket_url(self) -> str:
        """``bucket:key``, as the export body sends it."""
        return f"{self.bucket}{TARGET_SEPARATOR}{self.key}"

    def __str__(self) -> str:
        return self.bucket_url
