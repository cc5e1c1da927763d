"""Where a ledger lives: a path or URL made a SQLAlchemy engine (SQLite in WAL, or PostgreSQL through psycopg 3),
its write transactions, and its schema version brought up to date on open."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, ProgrammingError, SQLAlchemyError

from ims_nb._extras import missing_extra
from ims_nb.errors import ConfigError, register_secrets
from ims_nb.exports.schema import SCHEMA_VERSION, newer_than_known
from ims_nb.exports.tables import exports, metadata, schema_versions

#: Seconds a SQLite writer waits for another's lock before it fails (as the hand-written ledger did).
BUSY_TIMEOUT: Final = 30
#: The execution option that makes a connection's transaction a writer's (``BEGIN IMMEDIATE`` on SQLite).
WRITE: Final = "ims_nb_write"
SQLITE, POSTGRESQL = "sqlite", "postgresql"
#: libpq's password variable: a PostgreSQL URL may leave its password to it or to ``~/.pgpass``.
PGPASSWORD: Final = "PGPASSWORD"
#: Seconds a PostgreSQL ledger waits for the server to answer a new connection (libpq's own default is to wait
#: for ever: a server behind a firewall that drops packets would hang every verb); the URL's ``connect_timeout``
#: wins when given.
CONNECT_TIMEOUT: Final = 10
#: The driver a ``postgresql://`` URL gets: psycopg 3 (the ``postgres`` extra).
PG_DRIVER: Final = "postgresql+psycopg"
#: The PostgreSQL advisory lock (``pg_advisory_xact_lock``) held while a ledger is created or upgraded.
_UPGRADE_LOCK: Final = 0x1A5_0B_1ED6E
#: Errors an engine raises when it cannot reach or read its database, besides SQLAlchemy's own.
OPEN_ERRORS: Final = (OSError, SQLAlchemyError, sqlite3.Error)


def is_url(location: str | Path) -> bool:
    """Whether a ledger location is a database URL (``sqlite:///...``, ``postgresql://...``), not a file path."""
    return isinstance(location, str) and "://" in location


def ledger_url(location: str | Path) -> URL:
    """A path or URL as the engine's URL: a path is a SQLite file, ``postgresql://`` takes the psycopg 3 driver."""
    if not is_url(location):
        return URL.create(SQLITE, database=str(location))
    try:
        url = make_url(str(location))
    except (ArgumentError, ValueError):  # a malformed URL, or a port that is no number
        raise ConfigError("cannot read the ledger URL (expected sqlite:///PATH or postgresql://USER@HOST/DB)") from None
    if url.get_backend_name() in (POSTGRESQL, "postgres"):
        register_secrets(str(url.password or ""), os.environ.get(PGPASSWORD))  # masked in every error and log
        return url.set(drivername=PG_DRIVER)
    if url.get_backend_name() != SQLITE:
        raise ConfigError(f"the ledger runs on SQLite or PostgreSQL, not {url.get_backend_name()}: {shown(url)}")
    return url


def shown(url: URL) -> str:
    """The URL as output, reprs and errors show it: never its password."""
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL (None for another engine)."""
    return Path(url.database) if url.get_backend_name() == SQLITE and url.database else None


def open_engine(url: URL) -> Engine:
    """One engine per ledger (its connections pooled); SQLite's transactions are SQLAlchemy's to begin."""
    if url.get_backend_name() == SQLITE:
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        timeout = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT}
        return create_engine(url, pool_pre_ping=True, connect_args=timeout)
    except (ImportError, NoSuchModuleError) as exc:
        raise missing_extra("a PostgreSQL ledger", "psycopg") from exc


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """The driver's own transaction handling off (SQLAlchemy's ``begin`` event says BEGIN); WAL, as before."""
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across process crashes


def _sqlite_begin(connection: Connection) -> None:
    """A writer takes the file's write lock at once (other processes wait); a reader reads one snapshot."""
    immediate = connection.get_execution_options().get(WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def writing(connection: Connection) -> Iterator[Connection]:
    """One write transaction on a new connection: committed when the block ends, rolled back if it raises."""
    with connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            yield connection


def upgrade(engine: Engine, where: str) -> tuple[int, int]:
    """Bring a ledger to ``SCHEMA_VERSION``: its schema version before and after.

    One query when it is there already (no Alembic); else, in one write transaction (other processes wait),
    Alembic creates a new ledger's tables or runs the revisions an older one lacks (``ims_nb.exports.migrations``).
    A ledger newer than this ims-nb is refused.
    """
    with engine.connect() as connection:
        version = _version_on_open(connection)
    if version == SCHEMA_VERSION:
        return version, version
    _refuse_newer(version or 0, where)
    from ims_nb.exports import migrations  # Alembic: only for a ledger to create or upgrade

    with writing(engine.connect()) as connection:
        if connection.dialect.name == POSTGRESQL:  # creators and upgraders of one database queue here
            connection.execute(select(func.pg_advisory_xact_lock(_UPGRADE_LOCK)))
        version = read_version(connection)  # another process may have upgraded it meanwhile
        _refuse_newer(version, where)
        if version < SCHEMA_VERSION or not inspect(connection).has_table(exports.name):
            migrations.upgrade(connection, version)
            _write_version(connection)
    return version, SCHEMA_VERSION


def _refuse_newer(version: int, where: str) -> None:
    refused = newer_than_known(version, where)
    if refused:
        raise ConfigError(refused)


def _version_on_open(connection: Connection) -> int | None:
    """The schema version in one query (None: a server's ledger without its version row, to look at closely)."""
    if connection.dialect.name == SQLITE:
        return int(connection.exec_driver_sql("PRAGMA user_version").scalar_one())
    try:
        return int(connection.execute(select(func.max(schema_versions.c.version))).scalar() or 0)
    except ProgrammingError:  # no such table: a new database, or one of an ims-nb before versions
        return None


def read_version(connection: Connection) -> int:
    """The schema version of a ledger: SQLite's ``PRAGMA user_version``, else the ``ims_nb_schema`` row (0: none)."""
    if connection.dialect.name == SQLITE:
        return int(connection.exec_driver_sql("PRAGMA user_version").scalar_one())
    if not inspect(connection).has_table(schema_versions.name):
        return 0
    return int(connection.execute(select(schema_versions.c.version)).scalar() or 0)


def _write_version(connection: Connection) -> None:
    """The version older ims-nb read (and refuse when it is newer than theirs), beside Alembic's ``alembic_version``."""
    if connection.dialect.name == SQLITE:
        connection.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return
    metadata.create_all(connection, tables=[schema_versions])
    connection.execute(schema_versions.delete())
    connection.execute(schema_versions.insert().values(version=SCHEMA_VERSION))


def reason(exc: BaseException) -> str:
    """An error opening or using a ledger, in one line, without the statement (or a URL) SQLAlchemy adds."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig).strip().splitlines()[0]
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
