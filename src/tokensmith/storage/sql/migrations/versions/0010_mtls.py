"""Mutual TLS (RFC 8705): clients that authenticate by certificate, certificate-bound tokens.

- ``clients.tls_auth_kind`` and ``clients.tls_auth_value``: what identifies a
  ``tls_client_auth`` client's certificate (§2.1.2: its subject DN, or a DNS, URI, IP or
  e-mail subject alternative name);
- ``clients.cert_bound_tokens``: §3.4 ``tls_client_certificate_bound_access_tokens``;
- ``access_tokens.x5t_s256``: the ``x5t#S256`` of the certificate an opaque (or family)
  access token is bound to, for introspection's ``cnf`` (§3.2);
- ``token_families.x5t_s256``: the certificate a public client's refresh tokens are bound
  to (§4).

The new columns are nullable or have a constant default: adding them rewrites no row.

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BOUND = ("access_tokens", "token_families")


def upgrade() -> None:
    op.add_column("clients", sa.Column("tls_auth_kind", sa.String(16)))
    op.add_column("clients", sa.Column("tls_auth_value", sa.Text))
    op.add_column(
        "clients",
        sa.Column("cert_bound_tokens", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    for table in _BOUND:
        op.add_column(table, sa.Column("x5t_s256", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in _BOUND:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("x5t_s256")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("cert_bound_tokens")
        batch.drop_column("tls_auth_value")
        batch.drop_column("tls_auth_kind")
