"""Stored tokens record the issuer that issued them.

Instances of different issuers may share one database. A JWT carries its issuer in its
signed ``iss``; an opaque access token, a refresh token or an authorization code is a row
found by the token's hash, which said nothing of its issuer, so every issuer on the
database vouched for every other's tokens. Each of these rows now keeps the issuer's tag
(:func:`tokensmith.core.issuers.issuer_tag`, 16 hex digits) and an instance honours only
its own.

The column is nullable and added without a default: on PostgreSQL and SQLite that changes
the catalogue only, rewriting no row. Rows written before this revision keep NULL, which no
issuer honours unless ``legacy_token_issuer`` names it (docs/operations.md).

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("access_tokens", "refresh_tokens", "authorization_codes")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column("issuer_tag", sa.String(16), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("issuer_tag")
