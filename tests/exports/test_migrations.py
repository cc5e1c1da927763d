"""Schema versions through Alembic: a ledger of any older version reaches head with every row, a release's ledger
moves to PostgreSQL and back with every row equal, and a ledger at head opens without Alembic."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from ims_nb.errors import ConfigError
from ims_nb.exports import copy_ledger
from ims_nb.exports.engines import ledger_url
from ims_nb.exports.ledger import Ledger
from ims_nb.exports.migrations import HEAD, scripts
from ims_nb.exports.schema import SCHEMA_VERSION, revision_of
from ims_nb.exports.tables import exports, leases, schema_versions
from ims_nb.vocab import State, Target
from tests.exports.old_schema import SCHEMA_V0, upgrade_to

#: A ledger written by the release before the team's columns (commit 8c9fc90, schema version 3): exports launched
#: and watched on a two-region simulator (verified, failed, refused), a ``submitting`` row whose owner is dead, rows
#: of another region's project, and a row written before identities and adopted with a note.
RELEASE_LEDGER = Path(__file__).resolve().parent.parent / "data" / "ledger-v3.sqlite"
#: The columns version 4 added (NULL in every migrated row).
TEAM_COLUMNS = ("claim_key", "launched_user", "launched_host", "watcher")


def _rows(location: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of a ledger's tables, all columns, in key order (read apart from ``Ledger``)."""
    engine = create_engine(ledger_url(location))
    try:
        with engine.connect() as connection:
            return {table.name: [dict(row) for row in connection.execute(
                        select(table).order_by(*table.primary_key.columns)).mappings()]
                    for table in (exports, leases)}  # fmt: skip
    finally:
        engine.dispose()


def _release_rows(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
        return [dict(row) for row in db.execute("SELECT * FROM exports ORDER BY row_id")]


def test_the_revisions_run_from_the_first_version_to_this_ims_nbs() -> None:
    assert scripts().get_current_head() == HEAD == revision_of(SCHEMA_VERSION)
    chain = [script.revision for script in reversed(list(scripts().walk_revisions()))]
    assert chain == [revision_of(version) for version in range(1, SCHEMA_VERSION + 1)]


def test_the_release_ledger_migrates_and_copies_to_postgresql_and_back_with_every_row_equal(
    tmp_path: Path, pg_database: str
) -> None:
    path = tmp_path / "ledger.sqlite"
    shutil.copy(RELEASE_LEDGER, path)
    release = _release_rows(path)
    assert {r["state"] for r in release} >= {State.VERIFIED, State.FAILED, State.REFUSED, State.SUBMITTING}
    assert len({(r["region"], r["project_id"]) for r in release}) == 3 and any(r["adopted_at"] for r in release)

    with Ledger(path) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION
    migrated = _rows(path)
    assert [{k: v for k, v in row.items() if k not in TEAM_COLUMNS} for row in migrated["exports"]] == release
    assert all(row[name] is None for row in migrated["exports"] for name in TEAM_COLUMNS)

    assert copy_ledger(path, pg_database) == {"exports": len(release), "leases": 0}
    assert _rows(pg_database) == migrated
    with Ledger(pg_database) as on_server:  # the row id sequence starts past the copied ids
        assert on_server.schema_version() == SCHEMA_VERSION
        new_id = on_server.claim(image_id="img-new", target=Target("b", "new.qcow2"), image_name=None,
                                 file_format="qcow2", quick=False, size_bytes=None, region=None)  # fmt: skip
    assert new_id == len(release) + 1

    back = tmp_path / "back" / "ledger.sqlite"
    assert copy_ledger(pg_database, back)["exports"] == len(release) + 1
    assert _rows(back)["exports"][: len(release)] == migrated["exports"]
    with Ledger(back) as again:
        assert again.schema_version() == SCHEMA_VERSION and len(again.rows()) == len(release) + 1


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_a_file_of_every_older_version_reaches_head_with_every_row(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_V0)
        for n in range(1, 4):
            db.execute("INSERT INTO exports (image_id, bucket_url, quick, region, state, created_at, updated_at) "
                       "VALUES (?, ?, 0, 'cn-north-4', 'verified', ?, ?)",
                       (f"img-{n}", f"b:k{n}.qcow2", n, n))  # fmt: skip
    if version:
        upgrade_to(path, version)
    with Ledger(path) as ledger:
        rows = ledger.rows()
        assert ledger.schema_version() == SCHEMA_VERSION
    assert [(r["row_id"], r["image_id"], r["bucket_url"]) for r in rows] == [
        (n, f"img-{n}", f"b:k{n}.qcow2") for n in range(1, 4)]  # fmt: skip
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]


def test_a_release_postgresql_ledger_of_version_3_gains_the_teams_columns(pg_database: str) -> None:
    Ledger(pg_database).close()
    engine = create_engine(ledger_url(pg_database))
    with engine.begin() as connection:  # the release's server ledger: no team columns, no leases, no Alembic
        connection.execute(text("DROP INDEX exports_claim"))
        for name in TEAM_COLUMNS:
            connection.execute(text(f"ALTER TABLE exports DROP COLUMN {name}"))
        connection.execute(text("DROP TABLE leases"))
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(schema_versions.update().values(version=3))
    engine.dispose()
    with Ledger(pg_database) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION
        assert ledger.claim(image_id="img-1", target=Target("b", "k.qcow2"), image_name=None, file_format="qcow2",
                            quick=False, size_bytes=None, region=None) == 1  # fmt: skip
    assert set(TEAM_COLUMNS) <= set(_rows(pg_database)["exports"][0])


def test_a_ledger_at_head_opens_without_alembic(tmp_path: Path) -> None:
    Ledger(tmp_path / "ledger.sqlite").close()
    probe = (f"import sys; from ims_nb.exports.ledger import Ledger; Ledger({str(tmp_path / 'ledger.sqlite')!r})"
             ".close(); print('alembic' in sys.modules)")  # fmt: skip
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "False"


def test_copy_refuses_a_destination_with_rows_and_writes_nothing_there(tmp_path: Path) -> None:
    source, destination = tmp_path / "source.sqlite", tmp_path / "old.sqlite"
    shutil.copy(RELEASE_LEDGER, source)
    with sqlite3.connect(destination) as db:  # an old ledger with one row: not even its schema may change
        db.executescript(SCHEMA_V0)
        db.execute("INSERT INTO exports (image_id, bucket_url, quick, state, created_at, updated_at) "
                   "VALUES ('img-1', 'b:k.qcow2', 0, 'verified', 1, 1)")  # fmt: skip
    before = _contents(destination)
    with pytest.raises(ConfigError, match=f"the ledger {destination} is not empty") as refused:
        copy_ledger(source, destination)
    assert "\n" not in str(refused.value) and _contents(destination) == before


def _contents(path: Path) -> tuple[Any, ...]:
    """A SQLite file's schema version, tables and rows (its header's journal mode aside)."""
    with sqlite3.connect(path) as db:
        return (db.execute("PRAGMA user_version").fetchone(), db.execute("SELECT * FROM sqlite_master").fetchall(),
                db.execute("SELECT * FROM exports").fetchall())  # fmt: skip


def test_ledgers_opened_at_once_on_a_new_database_create_it_once(pg_database: str) -> None:
    def open_and_claim(n: int) -> int | None:
        with Ledger(pg_database) as ledger:
            return ledger.claim(image_id=f"img-{n}", target=Target("b", f"k{n}.qcow2"), image_name=None,
                                file_format="qcow2", quick=False, size_bytes=None, region=None)  # fmt: skip

    with ThreadPoolExecutor(max_workers=6) as pool:  # an engine each, as separate processes have
        claimed = list(pool.map(open_and_claim, range(6)))
    assert sorted(claimed) == [1, 2, 3, 4, 5, 6]  # type: ignore[type-var]
    assert [row["version_num"] for row in _rows_of(pg_database, "alembic_version")] == [HEAD]


def _rows_of(location: str, table: str) -> list[dict[str, Any]]:
    engine = create_engine(ledger_url(location))
    with engine.connect() as connection:
        rows = [dict(row) for row in connection.execute(text(f"SELECT * FROM {table}")).mappings()]
    engine.dispose()
    return rows
