"""Alembic's environment for the ledger: the revisions run on the caller's open connection, never a URL of their own."""

from __future__ import annotations

from alembic import context

from ims_nb.exports.migrations import CONNECTION
from ims_nb.exports.tables import metadata


def run() -> None:
    """Run the revisions in the caller's transaction (``migrations.upgrade``): every step commits, or none."""
    context.configure(connection=context.config.attributes[CONNECTION], target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run()
