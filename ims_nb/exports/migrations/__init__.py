"""The ledger's schema revisions (Alembic, ``versions/``): a ledger brought to head in its open transaction.

Imported only when a ledger is not at head (``engines.upgrade``): opening an up-to-date ledger loads no Alembic.
Revision ``000N`` is schema version N (SQLite's ``PRAGMA user_version``, a server's ``ims_nb_schema`` row), so a
ledger written before Alembic starts from the revision its version names. Revisions go forward only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Final

from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Column, Connection, inspect
from sqlalchemy.types import TypeEngine

from ims_nb.errors import ConfigError
from ims_nb.exports.schema import SCHEMA_VERSION, revision_of
from ims_nb.exports.tables import exports, leases, metadata

#: This folder: ``env.py`` and ``versions/`` (shipped as package data), no alembic.ini.
SCRIPTS: Final = Path(__file__).resolve().parent
#: The connection ``env.py`` runs the revisions on (Alembic's ``Config.attributes``).
CONNECTION: Final = "connection"


HEAD: Final = revision_of(SCHEMA_VERSION) or "base"


@cache
def scripts() -> ScriptDirectory:
    """The revisions, read once per process."""
    return ScriptDirectory(str(SCRIPTS))


def current_revision(connection: Connection) -> str | None:
    """The revision Alembic recorded in the ledger (``alembic_version``), None before Alembic."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, version: int, to: int = SCHEMA_VERSION) -> None:
    """Bring the ledger of ``connection`` from schema ``version`` to ``to`` (head), inside the caller's transaction.

    A ledger without the exports table is new: it gets ``tables.metadata``'s tables, stamped at head. One written
    before Alembic is stamped at the revision its version names, then the later revisions run, in order.
    """
    context = MigrationContext.configure(connection)
    if not inspect(connection).has_table(exports.name):
        metadata.create_all(connection, tables=[exports, leases])
        context.stamp(scripts(), HEAD)
        return
    start = revision_of(version)
    if context.get_current_revision() is None and start is not None:
        context.stamp(scripts(), start)
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes[CONNECTION] = connection
    try:
        command.upgrade(config, revision_of(to) or "base")
    except CommandError as exc:  # a revision this ims-nb does not know: written by a newer one
        raise ConfigError(f"cannot upgrade the ledger: {exc}; upgrade ims-nb") from None


def add_missing_columns(table: str, columns: dict[str, TypeEngine[Any]]) -> None:
    """For a revision: add the nullable ``columns`` the table lacks (a file opened by the ims-nb that added them
    before they were versioned has them already)."""
    present = {column["name"] for column in inspect(op.get_bind()).get_columns(table)}
    for name, kind in columns.items():
        if name not in present:
            op.add_column(table, Column(name, kind))
