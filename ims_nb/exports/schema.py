"""The ledger's row fields and its schema version, which names the Alembic revision a ledger is at."""

from __future__ import annotations

from typing import Final

#: The ledger's table (defined once in ``ims_nb.exports.tables``); a row's fields (``COLUMNS``) are the table's and
#: ``bucket_url`` (``bucket:object_key``), derived for readers.
EXPORTS_TABLE = "exports"
COLUMNS = ("row_id", "image_id", "image_name", "bucket", "object_key", "bucket_url", "file_format", "quick",
           "size_bytes", "region", "state", "job_id", "status", "process_percent", "begin_time", "end_time",
           "error_code", "fail_reason", "object_size", "note", "owner", "created_at", "updated_at",
           "progress_at")  # fmt: skip
UPDATABLE = frozenset(COLUMNS) - {"row_id", "image_id", "bucket", "object_key", "bucket_url", "created_at"}

#: The schema this ims-nb writes: the last revision of ``ims_nb/exports/migrations/versions`` (``000N`` is version
#: N). A later change adds its revision there, changes ``tables`` to match and raises this number.
#:
#: 0. ``bucket_url`` in one column (the schema before versions, Alembic's base)
#: 1. ``bucket`` and ``object_key`` apart
#: 2. whose a row is: ``endpoint``, ``project_id``, ``launched_by``, ``adopted_at``
#: 3. every row's scope: ``region`` and ``project_id`` filled in
#: 4. the team's columns (``claim_key`` unique, ``launched_user``, ``launched_host``, ``watcher``) and ``leases``
SCHEMA_VERSION: Final = 4


def revision_of(version: int) -> str | None:
    """The Alembic revision of a schema version (None for version 0: Alembic's base, before any revision)."""
    return f"{version:04d}" if version else None


def newer_than_known(version: int, where: str) -> str | None:
    """Why a ledger of schema ``version`` cannot be opened by this ims-nb (None when it can)."""
    if version <= SCHEMA_VERSION:
        return None
    return f"the ledger {where} has schema version {version}; this ims-nb knows up to {SCHEMA_VERSION}: upgrade ims-nb"
