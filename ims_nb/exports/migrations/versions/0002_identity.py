"""Version 1 to 2: the identity columns (whose a row is), added where missing; old rows keep NULL there until an
account claims them (``Ledger.bound_to``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ims_nb.exports.migrations import add_missing_columns

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    add_missing_columns("exports", {"endpoint": sa.Text(), "project_id": sa.Text(), "launched_by": sa.Text(),
                                    "adopted_at": sa.REAL()})  # fmt: skip
    op.create_index("exports_identity", "exports", ["endpoint", "project_id"], if_not_exists=True)
