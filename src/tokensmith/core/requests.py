"""What the web layer hands the core: parsed, single-valued, and typed.

Their ``repr`` shows no credential: not the secret, not the values of the parameters (a
code, a verifier, a refresh token), and not a presented ``client_id`` long enough to be a
secret sent in the wrong field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tokensmith.client_cert import ClientCertificate

__all__ = ["AuthMethod", "ClientCredentials", "DpopRequest", "TokenRequest"]

AuthMethod = Literal[
    "client_secret_basic",
    "client_secret_post",
    "none",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
]

#: The longest presented client_id a ``repr`` shows: generated ones have 13 characters,
#: generated secrets and tokens 43 or more.
SHOWN_ID_LENGTH = 32

#: Parameter names a ``repr`` shows (RFC 6749 §4, RFC 7636 §4.5); others are counted.
_KNOWN_PARAMS = frozenset(
    {
        "grant_type",
        "scope",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "client_id",
        "client_secret",
        "username",
        "password",
        "state",
    }
)


def shown_id(client_id: str) -> str:
    """A presented client_id as a ``repr`` may show it."""
    if len(client_id) <= SHOWN_ID_LENGTH and client_id.isprintable():
        return repr(client_id)
    return f"<{len(client_id)} characters>"


@dataclass(frozen=True, slots=True, repr=False)
class ClientCredentials:
    """Credentials as presented (RFC 6749 §2.3.1), or a JWT assertion (RFC 7523 §2.2):
    ``assertion`` with ``method`` ``private_key_jwt``, and ``endpoint``, the URL of the
    endpoint that received it (an ``aud`` it may name). ``certificate`` is the TLS client
    certificate a trusted proxy forwarded (RFC 8705 §2), if any: a client registered for
    ``tls_client_auth`` or ``self_signed_tls_client_auth`` sends its ``client_id`` alone
    (``method`` ``none``) and authenticates with it."""

    client_id: str
    client_secret: str | None
    method: AuthMethod
    assertion: str | None = None
    endpoint: str | None = None
    certificate: ClientCertificate | None = None

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={shown_id(self.client_id)}, method={self.method!r})"


@dataclass(frozen=True, slots=True, repr=False)
class DpopRequest:
    """What a request presented of DPoP (RFC 9449 §4.1): every ``DPoP`` header value, and
    the method and URI (``htm``, ``htu``) the proof must name."""

    proofs: tuple[str, ...]
    method: str
    uri: str

    def __repr__(self) -> str:
        return f"DpopRequest({len(self.proofs)} proof(s), {self.method} {self.uri})"


@dataclass(frozen=True, slots=True, repr=False)
class TokenRequest:
    """A token request (RFC 6749 §4): the grant type and its parameters."""

    grant_type: str
    params: Mapping[str, str]
    credentials: ClientCredentials | None
    source: str = ""
    #: The request's DPoP proof (RFC 9449 §5), if it sent a ``DPoP`` header.
    dpop: DpopRequest | None = None

    def __repr__(self) -> str:
        names = sorted(n for n in self.params if n in _KNOWN_PARAMS)
        others = len(self.params) - len(names)
        shown = names + ([f"+{others} other(s)"] if others else [])
        return (
            f"TokenRequest(grant_type={shown_id(self.grant_type)}, params=[{', '.join(shown)}], "
            f"credentials={self.credentials!r}, source={self.source!r}, dpop={self.dpop!r})"
        )
