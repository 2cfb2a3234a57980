"""A ``requests`` authentication adapter.  ``requests`` is optional and never imported
here at run time: the adapter only uses the objects ``requests`` hands to it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import challenge_says_invalid_token, is_use_dpop_nonce_challenge
from .sync import TokenClient
from .token import Token

if TYPE_CHECKING:
    from requests.models import PreparedRequest, Response

__all__ = ["RequestsAuth"]

_RETRIED = "_tokensmith_retried"


class RequestsAuth:
    """``requests.get(url, auth=RequestsAuth(tc))`` or ``session.auth = RequestsAuth(tc)``.

    Adds ``Authorization: Bearer ...`` (RFC 6750 §2.1), or for a DPoP-bound token
    ``Authorization: DPoP ...`` and a fresh ``DPoP`` proof (RFC 9449 §7.1).  It resends the
    request once: with the resource's nonce after a ``use_dpop_nonce`` challenge
    (RFC 9449 §9), or with a renewed token after ``error="invalid_token"``.
    """

    def __init__(self, client: TokenClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"RequestsAuth({self.client!r})"

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        token = self.client.get_token()
        nonce = self._put(request, token)
        if not getattr(request, _RETRIED, False):

            def on_response(response: Response, **kwargs: Any) -> Response:
                return self._retry(response, token, nonce, **kwargs)

            request.register_hook("response", on_response)  # type: ignore[no-untyped-call]
        return request

    def _put(self, request: PreparedRequest, token: Token) -> str | None:
        """Set the credentials; returns the DPoP nonce the proof carries."""
        request.headers["Authorization"] = token.authorization
        if not token.is_dpop:
            request.headers.pop("DPoP", None)
            return None
        proof, nonce = self.client._proof(
            request.method or "GET", request.url or "", token.access_token
        )
        request.headers["DPoP"] = proof
        return nonce

    def _next_token(self, response: Response, used: Token, nonce: str | None) -> Token | None:
        """The token to resend with, or None to hand ``response`` to the caller."""
        if used.is_dpop:
            self.client._note_nonce(response.request.url or "", response.headers)
            if (
                is_use_dpop_nonce_challenge(response.status_code, response.headers)
                and response.headers.get("dpop-nonce") != nonce
            ):
                return used
        if response.status_code != 401:
            return None
        if not challenge_says_invalid_token(response.headers.get("www-authenticate", "")):
            return None
        renewed = self.client.renew_after_rejection(used)
        return None if renewed.access_token == used.access_token else renewed

    def _retry(self, response: Response, used: Token, nonce: str | None, **kwargs: Any) -> Response:
        if getattr(response.request, _RETRIED, False):
            return response
        body = response.request.body
        if body is not None and not isinstance(body, bytes | str):
            return response  # a streamed body cannot be sent twice
        token = self._next_token(response, used, nonce)
        if token is None:
            return response
        response.content  # noqa: B018 - drain so the connection can be reused
        response.close()
        retry = response.request.copy()
        self._put(retry, token)
        setattr(retry, _RETRIED, True)
        retry.hooks = {"response": []}
        new = response.connection.send(retry, **kwargs)
        new.history.append(response)
        new.request = retry
        return new
