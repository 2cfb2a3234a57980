"""Parameters of OAuth extensions tokensmith does not implement, refused rather than ignored.

RFC 6749 §3.1 and §3.2 tell a server to ignore the parameters it does not know. These
one it knows, and ignoring it would change what the request means: a client that sends its
request as a signed object (RFC 9101) would get a token without the integrity it asked for,
and not know it. So it is refused at the authorization endpoint and the PAR endpoint
(RFC 9126):

* ``request``: ``request_not_supported`` (OpenID Connect Core §3.1.2.6).

``authorization_details`` (RFC 9396) is supported: :mod:`tokensmith.core.authorization_details`.

``request`` belongs to the authorization request only (RFC 9101 §5): at the token endpoint
it means nothing and is ignored like any other unknown parameter (RFC 6749 §3.2).

``resource`` (RFC 8707) is supported: :mod:`tokensmith.core.resources`.
"""

from __future__ import annotations

from collections.abc import Container

from tokensmith.core.errors import RequestNotSupported

__all__ = ["UNSUPPORTED", "refuse_unsupported"]

#: The parameters refused, with the specifications that define them.
UNSUPPORTED = {
    "request": "RFC 9101",
}


def refuse_unsupported(present: Container[str], *, authorization: bool) -> None:
    """Raise for the first unsupported parameter ``present`` holds (the parameters a request
    carries: a set, or the form itself). ``authorization``: an authorization request, at
    ``/oauth/authorize`` or pushed; else a token request, where ``request`` is not one."""
    if authorization and "request" in present:
        raise RequestNotSupported(
            "the request parameter (RFC 9101 request objects) is not supported"
        )
