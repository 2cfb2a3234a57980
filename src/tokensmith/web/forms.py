"""Reading ``application/x-www-form-urlencoded`` bodies and query strings, and client
credentials.

Both have the same bounds: at most ``MAX_FIELDS`` parameters (so parsing costs little
whatever is sent), and what :func:`urllib.parse.parse_qsl` refuses becomes
``invalid_request``, never an exception out of a handler.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote_plus

import orjson
from starlette.requests import ClientDisconnect, Request

from tokensmith.core.client_assertion import JWT_BEARER, assertion_client_id
from tokensmith.core.errors import InvalidClient, InvalidRequest, OAuthError
from tokensmith.core.requests import ClientCredentials

__all__ = [
    "MAX_FIELDS",
    "MAX_QUERY_BYTES",
    "BodyTooLarge",
    "client_credentials_from",
    "read_form",
    "read_json_object",
    "read_query",
]

#: Parameters a form or a query string may have (no request of ours needs a dozen).
MAX_FIELDS = 64
#: Bytes a query string may have.
MAX_QUERY_BYTES = 8192
#: RFC 6749 Appendix A: VSCHAR = %x20-7E
_VSCHARS = re.compile(r"[\x20-\x7e]*")


class BodyTooLarge(OAuthError):
    """HTTP 413: the body exceeds ``max_body_bytes``."""

    error = "invalid_request"
    status = 413


async def read_form(request: Request, max_bytes: int) -> dict[str, str]:
    """The form parameters, single-valued.

    RFC 6749 §3.2 requires ``application/x-www-form-urlencoded``; §3.1 says a
    parameter without a value is omitted and none may appear twice, but RFC 8707 §2's
    ``resource``, whose values are joined with spaces (no URI has one).
    """
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise InvalidRequest("the body must be application/x-www-form-urlencoded")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise InvalidRequest("the Content-Length header is not a number")
        if int(declared) > max_bytes:
            raise BodyTooLarge(f"the body is larger than {max_bytes} bytes")
    body = await _body(request, max_bytes)
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=False,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("the body is not a valid form encoding") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            if name != "resource":
                raise InvalidRequest(f"parameter {name!r} is repeated")
            value = f"{form[name]} {value}"
        form[name] = value
    return form


async def read_json_object(
    request: Request, max_bytes: int, invalid: type[OAuthError] = InvalidRequest
) -> dict[str, Any]:
    """An ``application/json`` body that is one JSON object (RFC 7591 §3.1); anything else
    raises ``invalid``, a body over ``max_bytes`` :class:`BodyTooLarge` before it is read
    whole."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise invalid("the body must be application/json")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"the body is larger than {max_bytes} bytes")
    body = await _body(request, max_bytes)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise invalid("the body is not JSON") from None
    if not isinstance(value, dict):
        raise invalid("the body must be a JSON object")
    return value


def read_query(request: Request) -> dict[str, list[str]]:
    """The query string's parameters, every value of each (RFC 6749 §3.1 says none may
    repeat; the caller decides what a repeat means), blank values kept.

    Raises ``invalid_request`` for a query longer than ``MAX_QUERY_BYTES`` or with more
    than ``MAX_FIELDS`` parameters. Percent-escapes that are not UTF-8 become U+FFFD.
    """
    raw: bytes = request.scope.get("query_string", b"")
    if len(raw) > MAX_QUERY_BYTES:
        raise InvalidRequest("the request is too long")
    try:
        return parse_qs(raw.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError as exc:
        raise InvalidRequest(f"the request has more than {MAX_FIELDS} parameters") from exc


async def _body(request: Request, max_bytes: int) -> bytes:
    """The request body from the ASGI ``receive`` channel, refused once it passes
    ``max_bytes`` (read directly: Starlette's stream generator costs more than the read)."""
    body: bytes = b""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge(f"the body is larger than {max_bytes} bytes")
        if not message.get("more_body", False):
            return body


def _basic(header: str) -> ClientCredentials:
    """RFC 7617 with the RFC 6749 §2.3.1 form-encoding of id and secret."""
    try:
        raw = base64.b64decode(header.strip(), validate=True).decode("utf-8")
        user, sep, password = raw.partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("malformed Basic credentials") from exc
    if not sep:
        raise InvalidRequest("malformed Basic credentials")
    return ClientCredentials(unquote_plus(user), unquote_plus(password), "client_secret_basic")


def client_credentials_from(
    authorization: str | None, form: dict[str, str], endpoint: str | None = None
) -> ClientCredentials | None:
    """The credentials presented by Basic or in the body (RFC 6749 §2.3.1), or a JWT
    assertion (RFC 7523 §2.2) sent to ``endpoint`` (its URL); at most one way."""
    creds: ClientCredentials | None
    if "client_assertion" in form or "client_assertion_type" in form:
        creds = _assertion(authorization, form, endpoint)
    else:
        creds = _presented(authorization, form)
    if creds is not None and not _VSCHARS.fullmatch(creds.client_id):
        # RFC 6749 Appendix A.1: client_id = *VSCHAR. Anything else names no client, and a
        # NUL must never reach the database (PostgreSQL rejects it in text).
        raise InvalidRequest("client_id contains characters outside RFC 6749 Appendix A")
    return creds


def _assertion(
    authorization: str | None, form: dict[str, str], endpoint: str | None
) -> ClientCredentials:
    """RFC 7521 §4.2, RFC 7523 §2.2: ``client_assertion_type`` is the JWT bearer type and
    ``client_assertion`` one JWT; ``client_id`` is optional (the assertion's ``sub``
    names the client, and must be the same as a ``client_id`` sent)."""
    if "client_secret" in form or (authorization and authorization[:6].lower() == "basic "):
        raise InvalidRequest("use one client authentication method, not several")
    kind, assertion = form.get("client_assertion_type"), form.get("client_assertion")
    if kind is None or assertion is None:
        raise InvalidRequest("send client_assertion_type and client_assertion together")
    if kind != JWT_BEARER:
        raise InvalidClient(f"client_assertion_type must be {JWT_BEARER}", reason="bad_assertion")
    client_id = form.get("client_id") or assertion_client_id(assertion)
    if client_id is None:
        raise InvalidClient("the client assertion names no client (sub)", reason="bad_assertion")
    return ClientCredentials(client_id, None, "private_key_jwt", assertion, endpoint)


def _presented(authorization: str | None, form: dict[str, str]) -> ClientCredentials | None:
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    if authorization:
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() == "basic":
            creds = _basic(rest)
            if body_secret is not None or (body_id is not None and body_id != creds.client_id):
                raise InvalidRequest("use one client authentication method, not several")
            return creds
    if body_id is None:
        if body_secret is not None:
            raise InvalidRequest("client_secret without client_id")
        return None
    if body_secret is None:
        return ClientCredentials(body_id, None, "none")
    return ClientCredentials(body_id, body_secret, "client_secret_post")
