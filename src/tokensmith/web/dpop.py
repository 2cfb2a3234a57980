"""The ``DPoP`` header of token requests (RFC 9449 §4.1), as the core's
:class:`~tokensmith.core.requests.DpopRequest`. The verifier itself is built by
:func:`tokensmith.web.compose.build_context`."""

from __future__ import annotations

from starlette.requests import Request

from tokensmith.core.requests import DpopRequest

__all__ = ["DPOP_NONCE_HEADER", "dpop_request"]

#: RFC 9449 §8: the response header that carries the server's nonce.
DPOP_NONCE_HEADER = "dpop-nonce"


def dpop_request(request: Request, url: str) -> DpopRequest | None:
    """The request's ``DPoP`` headers, every one of them (RFC 9449 §4.3 refuses more than
    one), with the method and the URI the proof must name: ``url``, the endpoint at the
    issuer URL (whatever host name the request used); ``None`` without a header."""
    values = [v for k, v in request.scope["headers"] if k == b"dpop"]  # as Headers.getlist
    if not values:
        return None
    proofs = tuple(v.decode("latin-1") for v in values)
    return DpopRequest(proofs, request.method, url)
