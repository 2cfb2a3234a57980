"""Client secrets sealed for ``client_secret_jwt`` (RFC 7523 §2.2, OIDC Core §9).

``client_secrets.sealed`` holds a ``client_secret_jwt`` client's secret encrypted with a
key derived from the server's secret key (never the secret in clear); it verifies the
client's HMAC-signed assertions. Nullable: every other secret stays a hash only.

Revision ID: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("client_secrets", sa.Column("sealed", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("client_secrets") as batch:
        batch.drop_column("sealed")
