"""Mutual TLS, RFC 8705: client authentication by certificate and certificate-bound tokens.

The TLS handshake happens at a proxy in front of tokensmith, which passes the client's
certificate on in a header; the web layer reads it only from a trusted proxy and hands the
core a :class:`~tokensmith.client_cert.ClientCertificate` with the client's credentials.

* ``tls_client_auth`` (§2.1): the proxy validated the certificate's chain to a CA it
  trusts; the client is the one whose registered subject DN or subject alternative name
  (exactly one of ``tls_client_auth_subject_dn``, ``_san_dns``, ``_san_uri``, ``_san_ip``,
  ``_san_email``) the certificate carries (§2.1.2).
* ``self_signed_tls_client_auth`` (§2.2): the certificate is one of those in the client's
  registered JWK Set (``x5c``, or a key's ``x5t#S256``), its ``jwks`` or ``jwks_uri``.
* A client registered with ``tls_client_certificate_bound_access_tokens`` (§3.4) gets
  access tokens bound to the certificate it connected with: ``cnf: {"x5t#S256": ...}``
  (§3.1) in a JWT, kept with an opaque token for introspection (§3.2); a public client's
  refresh tokens are bound to it too (§4). Such tokens stay ``Bearer`` tokens (§3).

No HTTP and no SQL here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import ipaddress
from typing import Any

from tokensmith.client_cert import ClientCertificate, parse_dn
from tokensmith.core.client_assertion import AssertionRefused, ClientKeys
from tokensmith.core.errors import InvalidGrant, InvalidRequest
from tokensmith.core.models import Client

__all__ = [
    "MTLS_METHODS",
    "SELF_SIGNED_TLS_CLIENT_AUTH",
    "SUBJECT_KINDS",
    "TLS_CLIENT_AUTH",
    "bound_thumbprint",
    "certificate_refusal",
    "check_refresh_certificate",
    "check_tls_subject",
    "subject_metadata",
]

TLS_CLIENT_AUTH = "tls_client_auth"
SELF_SIGNED_TLS_CLIENT_AUTH = "self_signed_tls_client_auth"
MTLS_METHODS = (TLS_CLIENT_AUTH, SELF_SIGNED_TLS_CLIENT_AUTH)
#: RFC 8705 §2.1.2: what identifies a ``tls_client_auth`` client, by the name tokensmith
#: stores it under, with its client metadata name.
SUBJECT_KINDS: dict[str, str] = {
    "subject_dn": "tls_client_auth_subject_dn",
    "san_dns": "tls_client_auth_san_dns",
    "san_uri": "tls_client_auth_san_uri",
    "san_ip": "tls_client_auth_san_ip",
    "san_email": "tls_client_auth_san_email",
}
_GENERIC = "client authentication failed"


def check_tls_subject(kind: str, value: str) -> str:
    """The registered value of one RFC 8705 §2.1.2 parameter, checked;
    :class:`ValueError` says what is wrong."""
    if kind not in SUBJECT_KINDS:
        raise ValueError(f"unknown tls_client_auth parameter {kind!r}")
    value = value.strip()
    if not value or len(value) > 1024 or not value.isprintable():
        raise ValueError(f"{SUBJECT_KINDS[kind]} must be printable text of 1 to 1024 characters")
    if kind == "subject_dn":
        parse_dn(value)
    elif kind == "san_ip":
        return str(ipaddress.ip_address(value))
    elif kind == "san_email" and "@" not in value:
        raise ValueError("tls_client_auth_san_email must be an e-mail address")
    return value


def subject_metadata(client: Client) -> dict[str, str]:
    """The client's RFC 8705 §2.1.2 metadata member, if it has one."""
    if client.tls_auth_kind is None or client.tls_auth_value is None:
        return {}
    return {SUBJECT_KINDS[client.tls_auth_kind]: client.tls_auth_value}


def _pki_matches(cert: ClientCertificate, kind: str | None, value: str | None) -> bool:
    """§2.1.2: the certificate carries the registered subject DN or SAN."""
    if kind is None or value is None:
        return False
    if kind == "subject_dn":
        return cert.subject_matches(value)
    return cert.san_matches(kind.removeprefix("san_"), value)


def _registered(keys: list[dict[str, Any]]) -> tuple[set[bytes], set[str]]:
    """The certificates (DER) and ``x5t#S256`` thumbprints of a JWK Set: each key's
    first ``x5c`` entry (RFC 7517 §4.7: the key's own certificate)."""
    certificates: set[bytes] = set()
    thumbprints: set[str] = set()
    for key in keys:
        chain = key.get("x5c")
        if isinstance(chain, list) and chain and isinstance(chain[0], str):
            with contextlib.suppress(binascii.Error, ValueError):
                certificates.add(base64.b64decode(chain[0], validate=True))
        x5t = key.get("x5t#S256")
        if isinstance(x5t, str):
            thumbprints.add(x5t)
    return certificates, thumbprints


async def certificate_refusal(
    keys: ClientKeys | None, client: Client | None, cert: ClientCertificate | None
) -> tuple[str | None, str]:
    """Why a client fails to authenticate with its certificate (RFC 8705 §2), and the
    description to answer: the check that failed, once the client is known to use mTLS."""
    if client is None:
        return "unknown_client", _GENERIC
    if not client.active:
        return "revoked_client", _GENERIC
    if cert is None:
        return "no_certificate", "this client authenticates with a TLS client certificate"
    if TLS_CLIENT_AUTH in client.auth_methods:
        if _pki_matches(cert, client.tls_auth_kind, client.tls_auth_value):
            return None, _GENERIC
        name = SUBJECT_KINDS.get(client.tls_auth_kind or "", "tls_client_auth")
        return "certificate_mismatch", f"the client certificate does not match {name}"
    if keys is None:
        return "mtls_disabled", "self-signed client certificates are not accepted here"
    try:
        registered = await keys.keys(client, None)
    except AssertionRefused as exc:
        return exc.reason, exc.description
    if cert.matches_any(*_registered(registered)):
        return None, _GENERIC
    return "certificate_not_registered", "the client certificate is not in the client's jwks"


def bound_thumbprint(client: Client, cert: ClientCertificate | None) -> str | None:
    """RFC 8705 §3: the certificate the tokens of this request are bound to: the one
    presented, for a client registered with ``tls_client_certificate_bound_access_tokens``
    (§3.4), which must then present one; ``None`` for other clients."""
    if not client.cert_bound_tokens:
        return None
    if cert is None:
        raise InvalidRequest(
            "this client's tokens are bound to its TLS client certificate: connect with one",
            reason="certificate_required",
        )
    return cert.thumbprint


def check_refresh_certificate(bound: str | None, presented: str | None) -> None:
    """RFC 8705 §4: a public client's refresh token bound to a certificate is exchanged only
    by a client connecting with that certificate."""
    if bound is None:
        return
    if presented is None or not hmac.compare_digest(bound, presented):
        raise InvalidGrant(
            "the refresh token is bound to another TLS client certificate",
            reason="certificate_mismatch",
        )
