"""Version 3 to 4: a team shares the ledger: each row's live claim (unique), who launched it on which host, who
watches it, and the ``leases`` table of the processes holding rows.

Old rows have no claim (their launches are judged by their states, as before) and no watcher. The first revision a
PostgreSQL ledger runs (the release before it wrote version 3 there).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ims_nb.exports.migrations import add_missing_columns

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    add_missing_columns("exports", {name: sa.Text() for name in ("claim_key", "launched_user", "launched_host",
                                                                 "watcher")})  # fmt: skip
    op.create_index("exports_claim", "exports", ["claim_key"], unique=True, if_not_exists=True)
    if sa.inspect(op.get_bind()).has_table("leases"):
        return
    op.create_table(
        "leases",
        sa.Column("holder", sa.Text(), primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("user", sa.Text()),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer()),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("renewed_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
