"""The FAPI 2.0 Security Profile (final, §5.3) as a switch: ``TOKENSMITH_PROFILE`` for the
server, ``Client.profile`` for one client (which wins when set).

Under ``fapi2`` tokensmith enforces, for the client the rule applies to:

* authorization requests only by PAR (§5.3.2.2; RFC 9126): a request in the query is
  ``invalid_request`` (:meth:`tokensmith.core.par.PushedRequests.required_for`);
* PKCE with S256 (§5.3.2.2; RFC 7636), ``redirect_uri`` in every pushed request and
  compared exactly, with no loopback port leeway (§5.3.2.2; RFC 9700 §2.1);
* confidential clients only, authenticating with one of :data:`FAPI2_AUTH_METHODS`
  (§5.3.2.1: ``private_key_jwt`` or mutual TLS, RFC 8705): another method is
  ``invalid_client`` (:meth:`tokensmith.core.authn.ClientAuthenticator.authenticate`);
* sender-constrained access tokens (§5.3.2.1): a token request that would get a bearer
  token is ``invalid_request`` (:func:`check_sender_constrained`);
* authorization codes living at most :data:`FAPI2_CODE_TTL` seconds (§5.3.2.1);
* ``iss`` in every authorization response (RFC 9207), which tokensmith always sends.

Refresh token rotation stays on under ``fapi2``: see docs/fapi.md, "The FAPI 2.0 profile".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from tokensmith.core.errors import InvalidClient, InvalidRequest
from tokensmith.core.models import Client, Profile
from tokensmith.core.requests import TokenRequest

__all__ = [
    "AUTH_METHODS",
    "DEFAULT",
    "FAPI2",
    "FAPI2_AUTH_METHODS",
    "FAPI2_CODE_TTL",
    "PROFILES",
    "ProfilePolicy",
    "advertised_auth_methods",
    "check_auth_method",
    "check_sender_constrained",
    "sender_constrained",
]

DEFAULT: Profile = "default"
FAPI2: Profile = "fapi2"
PROFILES: tuple[Profile, ...] = get_args(Profile)

#: FAPI 2.0 Security Profile §5.3.2.1 (5.3.1.1 for clients): the client authentication
#: methods allowed, ``private_key_jwt`` (RFC 7523 §2.2) and the mutual-TLS methods of
#: RFC 8705 §2. A method the server does not implement is never offered by the metadata.
FAPI2_AUTH_METHODS = frozenset(
    {"private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"}
)
#: The client authentication methods this server implements at the token, PAR,
#: introspection and revocation endpoints (RFC 8414 §2), ``none`` (a public client's,
#: token and PAR endpoints only) aside.
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
#: FAPI 2.0 §5.3.2.1: an authorization code lives at most 60 seconds.
FAPI2_CODE_TTL = 60


@dataclass(frozen=True, slots=True)
class ProfilePolicy:
    """``default``: the server's profile (``TOKENSMITH_PROFILE``), for clients without one."""

    default: Profile = DEFAULT

    def of(self, client: Client) -> Profile:
        """The client's effective profile: its own if set, else the server's."""
        return client.profile or self.default

    def fapi2(self, client: Client) -> bool:
        """Whether the FAPI 2.0 rules apply to ``client``."""
        return (client.profile or self.default) == FAPI2


def advertised_auth_methods(
    profile: Profile,
    *,
    public: bool,
    mtls: tuple[str, ...] = (),
    secret_jwt: bool = False,
) -> list[str]:
    """RFC 8414 §2 ``*_endpoint_auth_methods_supported`` for a server whose profile is
    ``profile``: under ``fapi2`` only the implemented methods FAPI 2.0 allows; ``public``
    adds ``none`` (the token endpoint's public clients) outside FAPI 2.0; ``mtls``: the
    RFC 8705 §2 methods, when a trusted proxy forwards client certificates;
    ``secret_jwt``: ``client_secret_jwt`` (RFC 7523 §2.2), when it is accepted."""
    implemented = [*AUTH_METHODS, *(("client_secret_jwt",) if secret_jwt else ()), *mtls]
    if profile == FAPI2:
        return [m for m in implemented if m in FAPI2_AUTH_METHODS]
    return [*implemented, "none"] if public else implemented


def check_auth_method(client: Client, method: str) -> None:
    """FAPI 2.0 §5.3.2.1: a FAPI 2.0 client authenticates with one of
    :data:`FAPI2_AUTH_METHODS`; a secret (``client_secret_basic``/``_post``) or none
    (a public client) is ``invalid_client``."""
    if method not in FAPI2_AUTH_METHODS:
        raise InvalidClient(
            f"this client follows the FAPI 2.0 profile: {method} is not allowed, "
            "authenticate with private_key_jwt (RFC 7523) or mutual TLS (RFC 8705)",
            reason="fapi2_auth_method",
            basic=method == "client_secret_basic",
        )


def sender_constrained(req: TokenRequest, jkt: str | None, x5t: str | None = None) -> bool:
    """Whether the tokens of this token request are bound to a key the client holds: a
    DPoP proof was verified (``jkt``, RFC 9449 §5) or they are bound to its TLS client
    certificate (``x5t``, RFC 8705 §3). The one place that decides."""
    return jkt is not None or x5t is not None


def check_sender_constrained(req: TokenRequest, jkt: str | None, x5t: str | None = None) -> None:
    """FAPI 2.0 §5.3.2.1: only sender-constrained access tokens are issued. A request
    without a proof is ``invalid_request`` (no proof was sent, so none is invalid;
    RFC 9449 §5 leaves the error to the server)."""
    if not sender_constrained(req, jkt, x5t):
        raise InvalidRequest(
            "a sender-constrained token is required (FAPI 2.0): send a DPoP proof "
            "(RFC 9449) with the token request, or use a client registered with "
            "certificate-bound tokens (RFC 8705)",
            reason="sender_constraint_required",
        )
