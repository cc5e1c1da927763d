"""The ledger's row fields and schema versions: the ordered steps that bring old SQLite files up to date."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

from ims_nb.vocab import split_bucket_url

#: The ledger's table (defined once in ``ims_nb.exports.tables``); a row's fields (``COLUMNS``) are the table's and
#: ``bucket_url`` (``bucket:object_key``), derived for readers.
EXPORTS_TABLE = "exports"
COLUMNS = ("row_id", "image_id", "image_name", "bucket", "object_key", "bucket_url", "file_format", "quick",
           "size_bytes", "region", "state", "job_id", "status", "process_percent", "begin_time", "end_time",
           "error_code", "fail_reason", "object_size", "note", "owner", "created_at", "updated_at",
           "progress_at")  # fmt: skip
UPDATABLE = frozenset(COLUMNS) - {"row_id", "image_id", "bucket", "object_key", "bucket_url", "created_at"}


def _split_bucket_url(db: sqlite3.Connection) -> None:
    """Version 0 to 1: ``bucket_url`` becomes ``bucket`` and ``object_key`` (every row kept, ids unchanged)."""
    db.execute("ALTER TABLE exports ADD COLUMN bucket TEXT")
    db.execute("ALTER TABLE exports ADD COLUMN object_key TEXT")
    for row_id, bucket_url in db.execute("SELECT row_id, bucket_url FROM exports").fetchall():
        bucket, key = split_bucket_url(bucket_url or "")
        db.execute("UPDATE exports SET bucket = ?, object_key = ? WHERE row_id = ?", (bucket, key or "", row_id))
    db.execute("DROP INDEX IF EXISTS exports_target")
    db.execute("ALTER TABLE exports DROP COLUMN bucket_url")
    db.execute("CREATE INDEX exports_target ON exports (image_id, bucket, object_key)")


def _identity_columns(db: sqlite3.Connection) -> None:
    """Version 1 to 2: the identity columns, added where missing (idempotent: files opened by the ims-nb that
    added them unversioned have them already); old rows keep NULL there until an account claims them
    (``Ledger.bound_to``)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(exports)")}
    for name, kind in IDENTITY_COLUMNS.items():
        if name not in present:
            db.execute(f"ALTER TABLE exports ADD COLUMN {name} {kind}")
    db.execute("CREATE INDEX IF NOT EXISTS exports_identity ON exports (endpoint, project_id)")


#: A public IMS endpoint names its region (``https://ims.{region}.myhuaweicloud.com``, as ``client.config`` builds it).
_ENDPOINT_REGION = re.compile(r"^https?://ims\.([a-z0-9-]+)\.")


def _scope_columns(db: sqlite3.Connection) -> None:
    """Version 2 to 3: every row says its scope (``region``, ``project_id``), as an estate's launches and watches
    read it; an old row without a region takes its identity's (another row of its endpoint, or the region its
    public endpoint names). Rows without identity keep NULL until an account claims them (``Ledger.bound_to``)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(exports)")}
    for name in ("region", "project_id"):
        if name not in present:
            db.execute(f"ALTER TABLE exports ADD COLUMN {name} TEXT")
    db.execute("UPDATE exports SET region = (SELECT known.region FROM exports AS known WHERE known.endpoint = "
               "exports.endpoint AND known.region IS NOT NULL ORDER BY known.row_id LIMIT 1) "
               "WHERE region IS NULL AND endpoint IS NOT NULL")  # fmt: skip
    for row_id, endpoint in db.execute("SELECT row_id, endpoint FROM exports WHERE region IS NULL AND endpoint "
                                       "IS NOT NULL").fetchall():  # fmt: skip
        named = _ENDPOINT_REGION.match(endpoint)
        if named:
            db.execute("UPDATE exports SET region = ? WHERE row_id = ?", (named.group(1), row_id))
    db.execute("CREATE INDEX IF NOT EXISTS exports_scope ON exports (region, project_id)")


def _team_columns(db: sqlite3.Connection) -> None:
    """Version 3 to 4: a team shares the ledger: each row's live claim (unique), who launched it on which host,
    who watches it, and the ``leases`` table of the processes holding rows (``tables.leases``). Old rows have no
    claim (their launches are judged by their states, as before) and no watcher."""
    present = {row[1] for row in db.execute("PRAGMA table_info(exports)")}
    for name in ("claim_key", "launched_user", "launched_host", "watcher"):
        if name not in present:
            db.execute(f"ALTER TABLE exports ADD COLUMN {name} TEXT")
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS exports_claim ON exports (claim_key)")
    db.execute("CREATE TABLE IF NOT EXISTS leases (holder TEXT NOT NULL PRIMARY KEY, kind TEXT NOT NULL, "
               "user TEXT, host TEXT NOT NULL, pid INTEGER, started_at FLOAT NOT NULL, renewed_at FLOAT NOT NULL, "
               "expires_at FLOAT NOT NULL)")  # fmt: skip


#: The columns that say whose a row is (added by ``_identity_columns``).
IDENTITY_COLUMNS = {"endpoint": "TEXT", "project_id": "TEXT", "launched_by": "TEXT", "adopted_at": "REAL"}
#: The steps that bring a SQLite file of schema version ``i`` (``PRAGMA user_version``) to ``i + 1``, in order. A
#: new ledger gets the whole table (``tables.exports``) at ``SCHEMA_VERSION``; a later change appends its step here
#: and changes the table to match.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _split_bucket_url,
    _identity_columns,
    _scope_columns,
    _team_columns,
)
SCHEMA_VERSION = len(MIGRATIONS)
