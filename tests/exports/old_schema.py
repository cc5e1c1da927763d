"""A ledger file as ims-nb wrote it before its schema was versioned (version 0), for the migration tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine

#: The schema every ledger file was written with before version 1 (``bucket_url`` in one column), verbatim.
SCHEMA_V0 = """
CREATE TABLE IF NOT EXISTS exports (
    row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL,
    image_name TEXT,
    bucket_url TEXT NOT NULL,
    file_format TEXT,
    quick INTEGER NOT NULL,
    size_bytes INTEGER,
    region TEXT,
    state TEXT NOT NULL,
    job_id TEXT UNIQUE,
    status TEXT,
    process_percent REAL,
    begin_time TEXT,
    end_time TEXT,
    error_code TEXT,
    fail_reason TEXT,
    object_size INTEGER,
    note TEXT,
    owner TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    progress_at REAL
);
CREATE INDEX IF NOT EXISTS exports_target ON exports (image_id, bucket_url);
CREATE INDEX IF NOT EXISTS exports_state ON exports (state);
"""


def upgrade_to(path: Path, version: int) -> None:
    """An old file brought to schema ``version`` by the revisions, as the ims-nb of that version left it (its
    ``PRAGMA user_version``, no Alembic table)."""
    from ims_nb.exports import migrations

    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        migrations.upgrade(connection, int(connection.exec_driver_sql("PRAGMA user_version").scalar_one()), version)
        connection.exec_driver_sql("DROP TABLE alembic_version")
        connection.exec_driver_sql(f"PRAGMA user_version = {version}")
    engine.dispose()
