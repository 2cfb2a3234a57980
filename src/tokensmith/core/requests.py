"""What the web layer hands the core: parsed, single-valued, and typed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["AuthMethod", "ClientCredentials", "TokenRequest"]

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """Credentials as presented (RFC 6749 §2.3.1); the secret never reaches a repr."""

    client_id: str
    client_secret: str | None = field(repr=False)
    method: AuthMethod


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A token request (RFC 6749 §4): the grant type and its parameters."""

    grant_type: str
    params: Mapping[str, str]
    credentials: ClientCredentials | None
    source: str = ""
