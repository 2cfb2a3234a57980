"""DPoP (RFC 9449): the jtis of proofs seen, tokens bound to a key, clients that must use it.

- ``replay_keys``: values used once (a DPoP proof's ``jti`` under its key, RFC 9449 §11.1),
  each kept until it could no longer be accepted anyway; every instance on the database
  refuses what one of them saw (:mod:`tokensmith.storage.sql.replay`).
- ``access_tokens.jkt``: the thumbprint of the key an opaque (or family) access token is
  bound to, for introspection's ``cnf`` (§6.2).
- ``token_families.jkt``: the key a public client's refresh tokens are bound to (§5).
- ``clients.require_dpop``: the client's token requests must carry a proof (§5.2).

The new columns are nullable or have a constant default: on PostgreSQL and SQLite adding
them changes the catalogue only, rewriting no row.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_JKT = ("access_tokens", "token_families")


def upgrade() -> None:
    op.create_table(
        "replay_keys",
        sa.Column("replay_key", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("ix_replay_keys_expires_at", "replay_keys", ["expires_at"])
    for table in _JKT:
        op.add_column(table, sa.Column("jkt", sa.String(64), nullable=True))
    op.add_column(
        "clients",
        sa.Column("require_dpop", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("require_dpop")
    for table in _JKT:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("jkt")
    op.drop_index("ix_replay_keys_expires_at", table_name="replay_keys")
    op.drop_table("replay_keys")
