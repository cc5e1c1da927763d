"""Version 2 to 3: every row says its scope (``region``, ``project_id``), as an estate's launches and watches read it.

An old row without a region takes its identity's (another row of its endpoint, or the region its public endpoint
names). Rows without identity keep NULL until an account claims them (``Ledger.bound_to``).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

from ims_nb.exports.migrations import add_missing_columns

revision = "0003"
down_revision = "0002"

#: A public IMS endpoint names its region (``https://ims.{region}.myhuaweicloud.com``, as ``client.config`` builds it).
_ENDPOINT_REGION = re.compile(r"^https?://ims\.([a-z0-9-]+)\.")


def upgrade() -> None:
    add_missing_columns("exports", {"region": sa.Text(), "project_id": sa.Text()})
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE exports SET region = (SELECT known.region FROM exports AS known WHERE "
                         "known.endpoint = exports.endpoint AND known.region IS NOT NULL ORDER BY known.row_id "
                         "LIMIT 1) WHERE region IS NULL AND endpoint IS NOT NULL"))  # fmt: skip
    without = "SELECT row_id, endpoint FROM exports WHERE region IS NULL AND endpoint IS NOT NULL"
    unnamed = bind.execute(sa.text(without))
    named = [{"row_id": row_id, "region": found.group(1)}
             for row_id, endpoint in unnamed.all() if (found := _ENDPOINT_REGION.match(endpoint))]  # fmt: skip
    if named:
        bind.execute(sa.text("UPDATE exports SET region = :region WHERE row_id = :row_id"), named)
    op.create_index("exports_scope", "exports", ["region", "project_id"], if_not_exists=True)
