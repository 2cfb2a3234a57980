"""The FAPI 2.0 profile switch per client, and codes bound to a DPoP key.

``clients.profile`` is the security profile a client follows (``default`` or ``fapi2``);
NULL, the value of every existing row, follows the server's ``TOKENSMITH_PROFILE``.
``authorization_codes.dpop_jkt`` is the thumbprint of the DPoP key a code is bound to
(RFC 9449 §10); NULL for a code bound to none. Both nullable: no row is rewritten.

Revision ID: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("profile", sa.String(16)))
    op.add_column("authorization_codes", sa.Column("dpop_jkt", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("dpop_jkt")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("profile")
