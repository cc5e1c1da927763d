"""The ledger's tables as SQLAlchemy Core defines them, once, for every engine (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, Table, Text

from ims_nb.exports.schema import EXPORTS_TABLE

metadata = MetaData()
#: Row ids and byte counts: 64 bits on PostgreSQL; SQLite's INTEGER is 64 bits already (and its row id must be it).
_BIG = BigInteger().with_variant(Integer, "sqlite")

#: One row per export launch (``ims_nb.exports.ledger``): the table a new ledger gets, the one old ledgers reach
#: through ``ims_nb.exports.migrations`` (same columns, types, constraints and indexes). Times are epoch seconds.
exports = Table(
    EXPORTS_TABLE,
    metadata,
    Column("row_id", _BIG, primary_key=True, autoincrement=True),
    Column("image_id", Text, nullable=False),
    Column("image_name", Text),
    Column("bucket", Text, nullable=False),
    Column("object_key", Text, nullable=False),
    Column("file_format", Text),
    Column("quick", Integer, nullable=False),
    Column("size_bytes", _BIG),
    Column("region", Text),
    Column("state", Text, nullable=False),
    Column("job_id", Text, unique=True),
    Column("status", Text),
    Column("process_percent", Float),
    Column("begin_time", Text),
    Column("end_time", Text),
    Column("error_code", Text),
    Column("fail_reason", Text),
    Column("object_size", _BIG),
    Column("note", Text),
    Column("owner", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("progress_at", Float),
    # whose row it is (schema version 2) and its scope (version 3)
    Column("endpoint", Text),
    Column("project_id", Text),
    Column("launched_by", Text),
    Column("adopted_at", Float),
    # the team's columns (version 4): the live claim of an image (unique: one live export per image and account,
    # whichever host claims it; NULL once the row is no longer live), who launched it where, who watches it
    Column("claim_key", Text),
    Column("launched_user", Text),
    Column("launched_host", Text),
    Column("watcher", Text),
    Index("exports_claim", "claim_key", unique=True),
    Index("exports_target", "image_id", "bucket", "object_key"),
    Index("exports_state", "state"),
    Index("exports_identity", "endpoint", "project_id"),
    Index("exports_scope", "region", "project_id"),
    sqlite_autoincrement=True,  # a row id is never reused, as with the hand-written table
)

#: One row per process that holds rows of the ledger (a launcher's ``submitting`` rows, a watcher's jobs): it renews
#: ``expires_at`` while it lives (heartbeat); a holder whose lease expired is gone, on whatever host it ran.
leases = Table(
    "leases",
    metadata,
    Column("holder", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("user", Text),
    Column("host", Text, nullable=False),
    Column("pid", Integer),
    Column("started_at", Float, nullable=False),
    Column("renewed_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

#: The schema version where the engine has no ``PRAGMA user_version`` (PostgreSQL): one row, one number.
schema_versions = Table("ims_nb_schema", metadata, Column("version", Integer, nullable=False))
