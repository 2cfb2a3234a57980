"""Partner apps: users, authorization codes, refresh token families, consents, sessions.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _users() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("merchant_id", sa.String(64), sa.ForeignKey("merchants.merchant_id")),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("disabled_at", sa.Double),
    )
    op.create_index("ix_users_merchant_id", "users", ["merchant_id"])


def _codes() -> None:
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("redirect_uri_sent", sa.Boolean, nullable=False),
        sa.Column("code_challenge", sa.String(128)),
        sa.Column("merchant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("family_id", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("used_at", sa.Double),
    )
    op.create_index("ix_authorization_codes_expires_at", "authorization_codes", ["expires_at"])


def _families() -> None:
    op.create_table(
        "token_families",
        sa.Column("family_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("merchant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("absolute_expires_at", sa.Double, nullable=False),
        sa.Column("revoked_at", sa.Double),
    )
    op.create_index("ix_token_families_expires_at", "token_families", ["expires_at"])
    op.create_index(
        "ix_token_families_absolute_expires_at", "token_families", ["absolute_expires_at"]
    )
    op.create_index(
        "ix_token_families_user_id_client_id", "token_families", ["user_id", "client_id"]
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "family_id",
            sa.String(64),
            sa.ForeignKey("token_families.family_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("issued_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.Column("access_jti", sa.String(64)),
        sa.Column("spent_at", sa.Double),
        sa.Column("spent_reason", sa.String(16)),
        sa.Column("replaced_by", sa.String(64)),
        sa.Column("replayed_at", sa.Double),
        sa.Column("revoked_at", sa.Double),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])


def _consents_and_sessions() -> None:
    op.create_table(
        "consents",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("granted_at", sa.Double, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(64)),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_seen_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_index("ix_sessions_last_seen_at", "sessions", ["last_seen_at"])
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])


def upgrade() -> None:
    _users()
    _codes()
    _families()
    _consents_and_sessions()


def downgrade() -> None:
    for table in (
        "sessions",
        "consents",
        "refresh_tokens",
        "token_families",
        "authorization_codes",
        "users",
    ):
        op.drop_table(table)
