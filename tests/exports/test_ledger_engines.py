"""Where a ledger lives: a path or URL picks the engine (SQLite file, ``sqlite:///``, ``postgresql://`` through
psycopg 3), a password never shows, the table of a new file is the one old files migrate to, and sqlalchemy loads
only with the ledger."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from ims_nb._extras import MissingExtraError
from ims_nb.errors import ConfigError
from ims_nb.exports import engines
from ims_nb.exports.engines import PG_DRIVER, ledger_url
from ims_nb.exports.ledger import ENV_LEDGER, Ledger, default_location, default_path
from ims_nb.exports.schema import SCHEMA_VERSION
from ims_nb.exports.tables import schema_versions
from ims_nb.vocab import State, Target
from tests.exports.old_schema import SCHEMA_V0

SECRET = "s3cret-pw"
#: Nothing listens on port 1 of the loopback: opening fails at once, as a server that is down does.
UNREACHABLE = f"postgresql://ims:{SECRET}@127.0.0.1:1/ledger"


def _claim(ledger: Ledger) -> int | None:
    return ledger.claim(image_id="img-1", target=Target("b", "k.qcow2"), image_name=None, file_format="qcow2",
                        quick=False, size_bytes=10 * 1024**3, region="cn-north-4")  # fmt: skip


def test_a_sqlite_url_is_the_same_file_as_its_path(tmp_path: Path) -> None:
    path = tmp_path / "team" / "ledger.sqlite"
    with Ledger(f"sqlite:///{path}") as by_url:
        assert by_url.path == path and path.exists()
        row_id = _claim(by_url)
        assert row_id is not None
        assert repr(by_url) == f"Ledger({str(path)!r})"
    with Ledger(path) as by_path:
        assert by_path.row(row_id)["state"] == State.SUBMITTING
        assert by_path.row(row_id)["size_bytes"] == 10 * 1024**3
        assert by_path.schema_version() == SCHEMA_VERSION


def test_the_environment_may_hold_a_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_LEDGER, f"sqlite:///{tmp_path / 'env.sqlite'}")
    assert default_location() == f"sqlite:///{tmp_path / 'env.sqlite'}"
    with Ledger() as ledger:
        assert ledger.path == tmp_path / "env.sqlite"
    with pytest.raises(ConfigError, match="holds a database URL"):
        default_path()  # a file's path only: never a URL read as a path
    monkeypatch.setenv(ENV_LEDGER, str(tmp_path / "plain.sqlite"))
    assert default_location() == default_path() == tmp_path / "plain.sqlite"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_a_postgresql_url_takes_psycopg_3(scheme: str) -> None:
    url = ledger_url(f"{scheme}://ims@db.example:5432/ledger")
    assert url.drivername == PG_DRIVER and url.database == "ledger" and url.host == "db.example"


def test_other_databases_are_refused_without_their_password() -> None:
    with pytest.raises(ConfigError, match="SQLite or PostgreSQL, not mysql") as refused:
        Ledger(f"mysql://ims:{SECRET}@db.example/ledger")
    assert SECRET not in str(refused.value)


def test_a_server_that_cannot_be_reached_is_a_config_error_that_hides_the_password() -> None:
    with pytest.raises(ConfigError, match="cannot open the ledger") as refused:
        Ledger(UNREACHABLE)
    message = str(refused.value)
    assert f"{PG_DRIVER}://ims:***@127.0.0.1:1/ledger" in message
    assert SECRET not in message and "\n" not in message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose server takes connections and never says a word (a firewall that drops the rest, a hung host)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("given", [False, True])
def test_a_server_that_never_answers_is_given_up_on(
    silent_server: int, given: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq would wait for ever; the ledger's default (here 1 s) or the URL's own ``connect_timeout`` ends it."""
    monkeypatch.setattr(engines, "CONNECT_TIMEOUT", 1 if not given else 600)
    url = f"postgresql://ims@127.0.0.1:{silent_server}/ledger" + ("?connect_timeout=1" if given else "")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="cannot open the ledger"):
        Ledger(url)
    assert time.monotonic() - started < 20


def test_without_psycopg_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # an import of it fails, as when it is not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'ims-nb\[postgres\]'") as refused:
        Ledger(UNREACHABLE)
    assert SECRET not in str(refused.value)


def _schema(path: Path) -> tuple[dict[str, tuple[str, int, int]], set[tuple[str, ...]]]:
    """A SQLite file's columns (type, not-null, primary key) and its indexes (name and columns)."""
    with sqlite3.connect(path) as db:
        columns = {r[1]: (r[2].upper().replace("FLOAT", "REAL"), r[3], r[5])
                   for r in db.execute("PRAGMA table_info(exports)")}  # fmt: skip
        indexes = {(name, *(c[2] for c in db.execute(f"PRAGMA index_info({name})")))
                   for _, name, *_ in db.execute("PRAGMA index_list(exports)")}  # fmt: skip
        assert "AUTOINCREMENT" in db.execute("SELECT sql FROM sqlite_master WHERE name = 'exports'").fetchone()[0]
    return columns, {(n.replace("sqlite_autoindex_exports_1", "unique"), *c) for n, *c in indexes}


def test_a_new_file_has_the_table_old_files_migrate_to(tmp_path: Path) -> None:
    Ledger(tmp_path / "new.sqlite").close()
    with sqlite3.connect(tmp_path / "old.sqlite") as db:
        db.executescript(SCHEMA_V0)
    Ledger(tmp_path / "old.sqlite").close()

    (new, new_indexes), (old, old_indexes) = _schema(tmp_path / "new.sqlite"), _schema(tmp_path / "old.sqlite")
    assert new_indexes == old_indexes and set(new) == set(old)
    assert {name: kind for name, (kind, _, _) in new.items()} == {name: kind for name, (kind, _, _) in old.items()}
    # NOT NULL where the hand-written table said so; the v0 step could only add bucket and object_key nullable
    assert {name for name, (_, not_null, _) in new.items() if not_null} - {"row_id"} == {
        name for name, (_, not_null, _) in old.items() if not_null} | {"bucket", "object_key"}  # fmt: skip
    assert ("unique", "job_id") in new_indexes


def test_import_ims_nb_and_the_cli_do_not_load_sqlalchemy() -> None:
    probe = "import sys, ims_nb, ims_nb.cli, ims_nb.widgets; print('sqlalchemy' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "False"


def test_a_postgresql_ledger_keeps_its_schema_version_in_a_row_and_hides_its_password(pg_database: str) -> None:
    with_password = pg_database.replace("@", f":{SECRET}@", 1)  # the suite's server trusts loopback: not checked
    with Ledger(with_password) as ledger:
        assert ledger.path is None and SECRET not in repr(ledger) and SECRET not in ledger.url
        assert repr(ledger) == f"Ledger({ledger.url!r})" and ":***@" in ledger.url and ledger.where == ledger.url
        assert ledger.schema_version() == SCHEMA_VERSION
        assert _claim(ledger) == 1 and _claim(ledger) is None
    engine = create_engine(ledger_url(pg_database))
    with engine.begin() as connection:
        connection.execute(schema_versions.update().values(version=SCHEMA_VERSION + 1))
    engine.dispose()
    with pytest.raises(ConfigError, match="upgrade ims-nb") as refused:
        Ledger(with_password)
    assert SECRET not in str(refused.value)


def test_a_closed_ledger_and_its_views_refuse_to_be_used(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    view = ledger.bound_to(None)
    assert ledger.where == view.where == str(tmp_path / "ledger.sqlite")  # the file, as its errors name it
    ledger.close()
    for closed in (ledger, view):
        with pytest.raises(sqlite3.ProgrammingError, match="is closed"):
            closed.rows()
