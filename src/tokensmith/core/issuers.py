"""Which issuer a stored token belongs to, for instances of different issuers that share
one database (and so its clients, keys and token tables).

A JWT names its issuer in the signed ``iss`` claim (RFC 9068 §2.2), which decoding checks.
An opaque access token, a refresh token and an authorization code are rows found by the
hash of the token: each row keeps the *issuer tag* of the issuer that wrote it, and an
instance honours only rows with its own tag.  So its introspection (RFC 7662 §2.2) never
vouches for another issuer's token, its refresh grant (RFC 6749 §6) never exchanges one,
and its token endpoint never redeems another issuer's code (§4.1.3).

Rows written before migration 0006 have no tag.  Nothing tells whose they are: by default
every instance honours them, so that an upgrade of a one-issuer deployment ends no
session; an operator of several issuers on one database names the issuer that wrote them
(``legacy_token_issuer``), and that issuer alone honours them until they expire, or says
``none``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["ISSUER_TAG_LENGTH", "NO_LEGACY_ISSUER", "IssuerBinding", "issuer_tag"]

#: Hex digits of an issuer tag: 64 bits, ample to tell apart the issuers an operator runs
#: on one database, and a fixed 16 characters in every token row.
ISSUER_TAG_LENGTH = 16

#: ``legacy_token_issuer`` value under which no instance honours untagged rows.
NO_LEGACY_ISSUER = "none"


def issuer_tag(issuer: str) -> str:
    """The first 64 bits of the SHA-256 of the issuer URL (without a trailing ``/``),
    in hex: ``printf %s "$ISSUER" | sha256sum | cut -c1-16``."""
    return hashlib.sha256(issuer.rstrip("/").encode("utf-8")).hexdigest()[:ISSUER_TAG_LENGTH]


@dataclass(frozen=True, slots=True)
class IssuerBinding:
    """The issuer an instance speaks for, and which stored tokens it honours."""

    issuer: str
    tag: str
    #: Whether rows without a tag (written before migration 0006) count as this issuer's.
    honours_untagged: bool = False

    @classmethod
    def of(cls, issuer: str, legacy_issuer: str | None = None) -> IssuerBinding:
        """The binding of ``issuer``. Untagged rows: honoured when ``legacy_issuer`` is empty
        or names this issuer (trailing ``/`` ignored), never when it is ``"none"``."""
        issuer = issuer.rstrip("/")
        legacy = (legacy_issuer or "").rstrip("/")
        return cls(issuer, issuer_tag(issuer), legacy in ("", issuer))

    def issued(self, tag: str | None) -> bool:
        """Whether a stored token with ``tag`` was issued by this issuer."""
        if tag is None:
            return self.honours_untagged
        return tag == self.tag
