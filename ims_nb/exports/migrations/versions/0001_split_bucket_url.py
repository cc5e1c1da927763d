"""Version 0 to 1: ``bucket_url`` becomes ``bucket`` and ``object_key`` (every row kept, ids unchanged)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ims_nb.vocab import split_bucket_url

revision = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.add_column("exports", sa.Column("bucket", sa.Text()))
    op.add_column("exports", sa.Column("object_key", sa.Text()))
    bind = op.get_bind()
    targets = []
    for row_id, bucket_url in bind.execute(sa.text("SELECT row_id, bucket_url FROM exports")).all():
        bucket, key = split_bucket_url(bucket_url or "")
        targets.append({"row_id": row_id, "bucket": bucket, "key": key or ""})
    if targets:
        bind.execute(sa.text("UPDATE exports SET bucket = :bucket, object_key = :key WHERE row_id = :row_id"), targets)
    op.execute("DROP INDEX IF EXISTS exports_target")
    op.drop_column("exports", "bucket_url")
    op.create_index("exports_target", "exports", ["image_id", "bucket", "object_key"])
