"""SQLite persistence for the simulator (``--state PATH``): every change is written through."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (seq INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (bucket TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL,
                                    PRIMARY KEY (bucket, key));
CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (token_hash TEXT PRIMARY KEY, body TEXT NOT NULL);
"""

#: An object's kept bytes (PUT objects have them), and the name they are saved under (base64 text).
BODY, BODY_B64 = "body", "body_base64"


class Store:
    """A write-through copy of the simulator's state in one SQLite file (WAL mode)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def is_empty(self) -> bool:
        with self._lock:
            count: int = self._db.execute("SELECT COUNT(*) FROM meta").fetchone()[0]
            return count == 0

    def replace_all(
        self,
        meta: dict[str, Any],
        images: list[dict[str, Any]],
        buckets: list[dict[str, Any]],
        objects: list[dict[str, Any]],
    ) -> None:
        """Reset: drop everything and write a new world in one transaction."""
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            try:
                for table in ("meta", "images", "buckets", "objects", "jobs", "tokens"):
                    db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
                db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
                db.executemany(
                    "INSERT INTO images (id, body) VALUES (?, ?)", [(i["id"], json.dumps(i)) for i in images]
                )
                db.executemany("INSERT INTO buckets VALUES (?, ?)", [(b["name"], json.dumps(b)) for b in buckets])
                db.executemany(
                    "INSERT INTO objects VALUES (?, ?, ?)", [(o["bucket"], o["key"], _object_json(o)) for o in objects]
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def put_meta(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def put_job(self, job: dict[str, Any], meta: dict[str, Any]) -> None:
        """Record a new job together with the meta it changed (the job sequence), atomically."""
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            try:
                db.execute("INSERT INTO jobs (id, body) VALUES (?, ?)", (job["job_id"], json.dumps(job)))
                db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()]
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def put_object(self, obj: dict[str, Any]) -> None:
        """Write an object (its body, if it has one, as base64), or the mark of a deleted one."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?)", (obj["bucket"], obj["key"], _object_json(obj))
            )

    def put_bucket(self, bucket: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?)", (bucket["name"], json.dumps(bucket)))

    def put_token(self, token_hash: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO tokens VALUES (?, ?)", (token_hash, json.dumps(body)))

    def load(self) -> dict[str, Any]:
        """Everything, in insertion order: meta, images, buckets, objects, jobs and tokens."""
        with self._lock:
            db = self._db
            return {
                "meta": {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")},
                "images": [json.loads(b) for (b,) in db.execute("SELECT body FROM images ORDER BY seq")],
                "buckets": [json.loads(b) for (b,) in db.execute("SELECT body FROM buckets")],
                "objects": [_object_from(b) for (b,) in db.execute("SELECT body FROM objects")],
                "jobs": [json.loads(b) for (b,) in db.execute("SELECT body FROM jobs ORDER BY seq")],
                "tokens": {h: json.loads(b) for h, b in db.execute("SELECT token_hash, body FROM tokens")},
            }


def _object_json(obj: dict[str, Any]) -> str:
    if BODY not in obj:
        return json.dumps(obj)
    return json.dumps({k: v for k, v in obj.items() if k != BODY} | {BODY_B64: base64.b64encode(obj[BODY]).decode()})


def _object_from(text: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(text)
    if BODY_B64 in obj:
        obj[BODY] = base64.b64decode(obj.pop(BODY_B64))
    return obj
