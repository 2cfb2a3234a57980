"""The seed dialects (``--compat``) and the standard endpoint, as :class:`Dialect` values."""

from __future__ import annotations

from typing import Any

from tokensmith.core.models import CLIENT_CREDENTIALS, IssuedToken
from tokensmith.core.tokens import IssuePolicy
from tokensmith.web.dialects import Dialect, oauth, problem

__all__ = ["DIALECT_PATHS", "dialects"]

#: Where each dialect's token endpoint lives.
DIALECT_PATHS = {
    "oauth": "/oauth/token",
    "tpay": "/oauth/auth",
    "tbc": "/v2/tpay/access-token",
    "dot": "/o/token/",
}


def _tpay_token(t: IssuedToken) -> dict[str, Any]:
    """tpay ``POST /oauth/auth``: the fields in the document's order."""
    return {
        "issued_at": t.issued_at,
        "scope": t.scope,
        "token_type": t.token_type,
        "expires_in": t.expires_in,
        "access_token": t.access_token,
    }


def _tbc_token(t: IssuedToken) -> dict[str, Any]:
    """TBC ``POST /v2/tpay/access-token``: access_token, expires_in, token_type."""
    return {"access_token": t.access_token, "expires_in": t.expires_in, "token_type": t.token_type}


def dialects(standard: IssuePolicy) -> dict[str, Dialect]:
    """Every dialect; the standard one takes its defaults from settings."""
    cc = frozenset({CLIENT_CREDENTIALS})
    return {
        "oauth": Dialect("oauth", standard, oauth.render_token, oauth.render_error),
        "tpay": Dialect(
            "tpay",
            IssuePolicy("opaque", 7200),
            _tpay_token,
            oauth.render_error,
            implicit_grant=CLIENT_CREDENTIALS,
            grants=cc,
        ),
        "tbc": Dialect(
            "tbc",
            IssuePolicy("jwt", 86400),
            _tbc_token,
            problem.render_problem,
            implicit_grant=CLIENT_CREDENTIALS,
            grants=cc,
        ),
        "dot": Dialect(
            "dot", IssuePolicy("opaque", 36000), oauth.render_token, oauth.render_error, grants=cc
        ),
    }
