"""A ledger as a whole: its schema brought to head, what it holds, and every row copied to another engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, func, inspect, select, text

from ims_nb.errors import ConfigError
from ims_nb.exports import engines
from ims_nb.exports.tables import exports, leases

#: The tables a copy moves, in order; row ids (``exports.row_id``) and lease holders are kept.
COPIED: tuple[Table, ...] = (exports, leases)
#: Rows inserted per statement while copying.
BATCH = 500


@dataclass(frozen=True)
class Opened:
    """A ledger's engine and how messages name it (its file, or its URL without the password)."""

    engine: Engine
    where: str
    password: str | None

    @contextmanager
    def guard(self) -> Iterator[None]:
        """An error reaching or using the ledger in the block: one line that names it, never its password."""
        try:
            yield
        except engines.OPEN_ERRORS as exc:
            reason = engines.reason(exc)
            shown = reason.replace(self.password, "***") if self.password else reason
            raise ConfigError(f"the ledger {self.where}: {shown}") from None


def where(location: str | Path) -> str:
    """How messages name a ledger's location: its file, or its URL without the password."""
    url = engines.ledger_url(location)
    path = engines.sqlite_path(url)
    return str(path) if path else engines.shown(url)


@contextmanager
def opened(location: str | Path) -> Iterator[Opened]:
    """The engine of a ledger's location (a path or URL; a file's folder is created), disposed of at the end."""
    url = engines.ledger_url(location)
    path = engines.sqlite_path(url)
    ledger = Opened(engines.open_engine(url), where(location), url.password)
    try:
        with ledger.guard():
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        yield ledger
    finally:
        ledger.engine.dispose()


def upgrade_ledger(location: str | Path) -> tuple[int, int]:
    """Bring the ledger at ``location`` to this ims-nb's schema (as opening it does): its version before and after."""
    with opened(location) as ledger, ledger.guard():
        return engines.upgrade(ledger.engine, ledger.where)


@dataclass(frozen=True)
class LedgerInfo:
    """What ``ledger_info`` reads: where the ledger is (no password), its engine, schema version and rows."""

    where: str
    engine: str
    schema_version: int
    states: dict[str, int] = field(default_factory=dict)
    leases: int = 0

    @property
    def rows(self) -> int:
        return sum(self.states.values())


def ledger_info(location: str | Path) -> LedgerInfo:
    """The ledger at ``location`` as it is, read only (an old one is not upgraded): its rows counted by state."""
    path = engines.sqlite_path(engines.ledger_url(location))
    if path is not None and not path.is_file():
        raise ConfigError(f"no ledger at {path}")
    with opened(location) as ledger, ledger.guard(), ledger.engine.connect() as connection:
        present = set(inspect(connection).get_table_names())
        states: dict[str, int] = {}
        if exports.name in present:
            counted = select(exports.c.state, func.count()).group_by(exports.c.state).order_by(exports.c.state)
            states = {str(state): int(count) for state, count in connection.execute(counted)}
        version = engines.read_version(connection)
        return LedgerInfo(ledger.where, connection.dialect.name, version, states, _count(connection, leases, present))


def copy_ledger(source: str | Path, destination: str | Path) -> dict[str, int]:
    """Copy every row of a ledger to a new or empty one, on either engine (SQLite to PostgreSQL and back).

    Both are brought to this ims-nb's schema first. The rows keep their ids, in one transaction on the destination;
    on PostgreSQL the row id sequence is set past the largest id, so new rows do not collide.

    Returns:
        The rows copied per table (``exports``, ``leases``).

    Raises:
        ConfigError: the destination holds rows (nothing is written), or either ledger cannot be reached or read.
    """
    with opened(source) as src, opened(destination) as dst:
        with src.guard():
            engines.upgrade(src.engine, src.where)
        with dst.guard(), dst.engine.connect() as connection:
            _refuse_rows(connection, dst.where)  # before anything is written there, even its schema
        with dst.guard():
            engines.upgrade(dst.engine, dst.where)
        copied: dict[str, int] = {}
        with dst.guard(), src.engine.connect() as reading, engines.writing(dst.engine.connect()) as writing:
            _refuse_rows(writing, dst.where)  # another process may have written meanwhile
            for table in COPIED:
                copied[table.name] = _copy_rows(table, reading, writing)
            if writing.dialect.name == engines.POSTGRESQL and copied[exports.name]:
                writing.execute(text("SELECT setval(pg_get_serial_sequence('exports', 'row_id'), "
                                     "(SELECT max(row_id) FROM exports))"))  # fmt: skip
        return copied


def _refuse_rows(connection: Connection, where: str) -> None:
    present = set(inspect(connection).get_table_names())
    held = sum(_count(connection, table, present) for table in COPIED)
    if held:
        raise ConfigError(f"the ledger {where} is not empty ({held} rows): copy into a new or empty ledger")


def _count(connection: Connection, table: Table, present: set[str]) -> int:
    """The rows of ``table`` (0 when the ledger has no such table: a new one, or older than the table)."""
    if table.name not in present:
        return 0
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _copy_rows(table: Table, reading: Connection, writing: Connection) -> int:
    """Every row of ``table``, in primary key order, batch by batch; how many."""
    count = 0
    result = reading.execute(select(table).order_by(*table.primary_key.columns)).mappings()
    while batch := [dict(row) for row in result.fetchmany(BATCH)]:
        writing.execute(table.insert(), batch)
        count += len(batch)
    return count
