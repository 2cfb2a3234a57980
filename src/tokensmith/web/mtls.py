"""The TLS client certificate a trusted proxy forwards (RFC 8705), as the core's
:class:`~tokensmith.client_cert.ClientCertificate`.

tokensmith does not terminate TLS itself: a proxy in front of it (nginx with
``ssl_verify_client``) does, and passes the client's certificate on in the header
``client_cert_header`` names. Anyone can send that header, so it is read only from a
peer listed in ``trusted_proxies``; from any other peer it is ignored, as if absent.
"""

from __future__ import annotations

import dataclasses

from starlette.requests import Request

from tokensmith.client_cert import BadCertificate, ClientCertificate, certificate_from_headers
from tokensmith.core.errors import InvalidClient
from tokensmith.core.requests import ClientCredentials
from tokensmith.settings import Settings

__all__ = ["client_certificate", "with_certificate"]


def client_certificate(request: Request, settings: Settings) -> ClientCertificate | None:
    """The certificate a trusted proxy forwarded; ``None`` without one, or when the peer is
    not a trusted proxy. A malformed header is ``invalid_client`` (RFC 8705 §2)."""
    trusted = settings.trusted_proxies
    if not trusted:
        return None
    peer = request.client.host if request.client else ""
    if peer not in trusted:
        return None
    name = settings.client_cert_header.lower().encode("ascii")
    try:
        return certificate_from_headers(request.scope["headers"], name)
    except BadCertificate as exc:
        raise InvalidClient(str(exc), reason="bad_certificate") from None


def with_certificate(
    creds: ClientCredentials | None, request: Request, settings: Settings
) -> ClientCredentials | None:
    """``creds`` with the request's client certificate, if a trusted proxy forwarded one."""
    if creds is None or not settings.trusted_proxies:
        return creds
    cert = client_certificate(request, settings)
    return creds if cert is None else dataclasses.replace(creds, certificate=cert)
