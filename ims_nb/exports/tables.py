"""The ledger's tables as SQLAlchemy Core defines them, once, for every engine (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, Table, Text

from ims_nb.exports.schema import EXPORTS_TABLE

metadata = MetaData()
#: Row ids and byte counts: 64 bits on PostgreSQL; SQLite's INTEGER is 64 bits already (and its row id must be it).
_BIG = BigInteger().with_variant(Integer, "sqlite")

#: One row per export launch (``ims_nb.exports.ledger``): the table a new ledger gets, the one old SQLite files
#: reach through ``schema.MIGRATIONS`` (same columns, types, constraints and indexes). Times are epoch seconds.
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
    Index("exports_target", "image_id", "bucket", "object_key"),
    Index("exports_state", "state"),
    Index("exports_identity", "endpoint", "project_id"),
    Index("exports_scope", "region", "project_id"),
    sqlite_autoincrement=True,  # a row id is never reused, as with the hand-written table
)

#: The schema version where the engine has no ``PRAGMA user_version`` (PostgreSQL): one row, one number.
schema_versions = Table("ims_nb_schema", metadata, Column("version", Integer, nullable=False))
