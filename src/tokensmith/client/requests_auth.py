"""A ``requests`` authentication adapter.  ``requests`` is optional and never imported
here at run time: the adapter only uses the objects ``requests`` hands to it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import challenge_says_invalid_token
from .sync import TokenClient
from .token import Token

if TYPE_CHECKING:
    from requests.models import PreparedRequest, Response

__all__ = ["RequestsAuth"]

_RETRIED = "_tokensmith_retried"


class RequestsAuth:
    """``requests.get(url, auth=RequestsAuth(tc))`` or ``session.auth = RequestsAuth(tc)``.

    Adds ``Authorization: Bearer ...`` (RFC 6750 §2.1); on a 401 with
    ``error="invalid_token"`` it renews the token and resends the request once.
    """

    def __init__(self, client: TokenClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"RequestsAuth({self.client!r})"

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        token = self.client.get_token()
        request.headers["Authorization"] = token.authorization
        if not getattr(request, _RETRIED, False):

            def on_response(response: Response, **kwargs: Any) -> Response:
                return self._retry_on_invalid_token(response, token, **kwargs)

            request.register_hook("response", on_response)  # type: ignore[no-untyped-call]
        return request

    def _retry_on_invalid_token(self, response: Response, used: Token, **kwargs: Any) -> Response:
        if response.status_code != 401 or getattr(response.request, _RETRIED, False):
            return response
        values = response.headers.get("www-authenticate", "")
        if not challenge_says_invalid_token(values):
            return response
        body = response.request.body
        if body is not None and not isinstance(body, bytes | str):
            return response  # a streamed body cannot be sent twice
        renewed = self.client.renew_after_rejection(used)
        if renewed.access_token == used.access_token:
            return response
        response.content  # noqa: B018 - drain so the connection can be reused
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = renewed.authorization
        setattr(retry, _RETRIED, True)
        retry.hooks = {"response": []}
        new = response.connection.send(retry, **kwargs)
        new.history.append(response)
        new.request = retry
        return new
