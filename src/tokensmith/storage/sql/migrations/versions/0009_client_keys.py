"""Clients' public keys for ``private_key_jwt`` (RFC 7523 §2.2, RFC 7591 §2).

``clients.jwks`` holds a client's JWK Set as JSON text, ``clients.jwks_uri`` the URL it
publishes one at; both nullable, so existing clients keep their secrets and no row is
rewritten.

Revision ID: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("jwks", sa.Text))
    op.add_column("clients", sa.Column("jwks_uri", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("jwks_uri")
        batch.drop_column("jwks")
