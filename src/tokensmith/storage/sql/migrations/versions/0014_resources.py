"""Resource indicators (RFC 8707).

``resources`` holds the registered APIs. ``access_tokens.audience``,
``authorization_codes.resources`` and ``token_families.resources`` keep the resources a
token is for and a grant named, space-separated; all nullable, so existing rows mean what
they meant (no resource: the server's audience) and no row is rewritten.

Revision ID: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resources",
        sa.Column("identifier", sa.String(512), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("access_token_ttl", sa.Integer),
        sa.Column("token_format", sa.String(16)),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.add_column("access_tokens", sa.Column("audience", sa.Text))
    op.add_column("authorization_codes", sa.Column("resources", sa.Text))
    op.add_column("token_families", sa.Column("resources", sa.Text))


def downgrade() -> None:
    for table, column in (
        ("token_families", "resources"),
        ("authorization_codes", "resources"),
        ("access_tokens", "audience"),
    ):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    op.drop_table("resources")
