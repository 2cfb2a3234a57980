"""The admin API's client state: ``clients.disabled_at`` (a reversible disable: token
requests fail and tokens are inactive until the client is enabled again) and
``clients.tokens_revoked_before`` (every token issued to the client at or before it is
inactive, RFC 7009 §2.1 for all of them at once). Both nullable: no row is rewritten.

Revision ID: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("disabled_at", sa.Double))
    op.add_column("clients", sa.Column("tokens_revoked_before", sa.Double))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("tokens_revoked_before")
        batch.drop_column("disabled_at")
