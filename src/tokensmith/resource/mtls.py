"""Certificate-bound access tokens at the resource server (RFC 8705 §3).

A token the authorization server bound to a TLS client certificate carries that
certificate's SHA-256 thumbprint in ``cnf`` ``x5t#S256`` (in its JWT claims, or in its
introspection answer). The API accepts it only from a client that connected with that same
certificate. TLS ends at a proxy in front of the API, which forwards the certificate in a
header (nginx: ``proxy_set_header X-Client-Cert $ssl_client_escaped_cert;``); the header
is read only from the proxy addresses the guard trusts, and ignored from anyone else.

:class:`CertificateBinding` holds the guard's mode: ``off`` (the default: the API takes no
certificates, and refuses certificate-bound tokens, which it cannot check), ``allowed``
(bound tokens must match the certificate; unbound ones pass) or ``required`` (every token
must be bound, and match).
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Literal

from tokensmith.client_cert import (
    DEFAULT_HEADER,
    BadCertificate,
    ClientCertificate,
    certificate_from_headers,
    cnf_x5t,
    parse_certificate_header,
)

from .errors import InvalidToken

__all__ = ["DEFAULT_HEADER", "CertificateBinding", "ClientCertificate", "MtlsMode"]

MtlsMode = Literal["off", "allowed", "required"]
_MODES: tuple[str, ...] = ("off", "allowed", "required")


class CertificateBinding:
    """The guard's RFC 8705 §3 check: which header holds the certificate, which peers may
    set it, and whether bound tokens are allowed or required."""

    def __init__(
        self,
        mode: str = "off",
        *,
        cert_header: str = DEFAULT_HEADER,
        trusted_proxies: Collection[str] = (),
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mtls must be one of {_MODES}")
        self.mode: MtlsMode = mode  # type: ignore[assignment]
        self.trusted_proxies = frozenset(trusted_proxies)
        if self.mode != "off" and not self.trusted_proxies:
            raise ValueError("mtls needs trusted_proxies: the addresses of the TLS proxy")
        self.header = cert_header.lower().encode("ascii")

    def __repr__(self) -> str:
        return f"CertificateBinding({self.mode!r}, proxies={sorted(self.trusted_proxies)!r})"

    def certificate(
        self, headers: Iterable[tuple[bytes, bytes]], peer: str | None
    ) -> ClientCertificate | None:
        """The certificate the proxy forwarded in raw (ASGI) headers; ``None`` without one,
        with mTLS off, or when ``peer`` is not a trusted proxy (the header is then
        ignored: the client may have sent it itself). :class:`InvalidToken` for a
        malformed header."""
        if self.mode == "off" or peer not in self.trusted_proxies:
            return None
        try:
            return certificate_from_headers(list(headers), self.header)
        except BadCertificate as exc:
            raise InvalidToken(f"client certificate: {exc}") from None

    def certificate_of(self, value: str | None, peer: str | None) -> ClientCertificate | None:
        """The same for a header value already read (WSGI and other frameworks)."""
        if self.mode == "off" or peer not in self.trusted_proxies or not value:
            return None
        try:
            return parse_certificate_header(value)
        except BadCertificate as exc:
            raise InvalidToken(f"client certificate: {exc}") from None

    def check(self, claims: Mapping[str, Any], cert: ClientCertificate | None) -> None:
        """RFC 8705 §3: a bound token only with its certificate; with ``required``, bound
        tokens only. :class:`InvalidToken` (401 ``invalid_token``) otherwise."""
        bound = cnf_x5t(claims)
        if bound is None:
            if self.mode == "required":
                raise InvalidToken("this API takes certificate-bound tokens only (RFC 8705)")
            return
        if self.mode == "off":
            raise InvalidToken("a certificate-bound token needs mutual TLS at this API")
        if cert is None:
            raise InvalidToken("the token is bound to a TLS client certificate: none was sent")
        if not hmac.compare_digest(bound, cert.thumbprint):
            raise InvalidToken("the token is bound to another TLS client certificate")


def refuse_bound(claims: Mapping[str, Any]) -> None:
    """For a validator without a :class:`CertificateBinding`: a certificate-bound token
    cannot be checked there, so it is refused."""
    if cnf_x5t(claims) is not None:
        raise InvalidToken("a certificate-bound token needs mutual TLS at this API")
