"""A ledger file as ims-nb wrote it before its schema was versioned (version 0), for the migration tests."""

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
