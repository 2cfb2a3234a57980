"""RFC 7807 problem details, shaped as the TBC ``/v2/tpay/access-token`` document shows.

Every problem carries ``type``, ``title``, ``status``, ``detail``, ``systemCode``
and ``code``. ``status`` is a string, as in the document's sample.
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.responses import Response

from tokensmith.core.errors import InvalidClient, OAuthError
from tokensmith.web.dialects.oauth import error_headers, json_response

__all__ = ["PROBLEM_JSON", "ApiKeyRejected", "render_problem", "system_code"]

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://developers.tbcbank.ge/docs/error-type-"
SYSTEM_PREFIX = "tpay-access-token"


class ApiKeyRejected(OAuthError):
    """The ``apikey`` header is missing or names no live developer app key: 401."""

    error = "invalid_apikey"
    status = 401


#: (status, error) -> the three-digit sequence after ``tpay-access-token.<status>.``
_SEQUENCE = {
    (400, "invalid_client"): "001",
    (400, "invalid_request"): "002",
    (400, "invalid_scope"): "003",
    (400, "unauthorized_client"): "004",
    (400, "unsupported_grant_type"): "005",
    (401, "invalid_apikey"): "001",
    (413, "invalid_request"): "001",
    (429, "slow_down"): "001",
    (503, "temporarily_unavailable"): "001",
}


def system_code(status: int, error: str) -> str:
    return f"{SYSTEM_PREFIX}.{status}.{_SEQUENCE.get((status, error), '000')}"


def render_problem(exc: OAuthError) -> Response:
    """RFC 7807 §3.1 members plus the document's ``systemCode`` and ``code``.

    Wrong merchant credentials are 400 (the document's note), not RFC 6749's 401.
    """
    status = 400 if isinstance(exc, InvalidClient) else exc.status
    headers = error_headers(exc)
    headers.pop("www-authenticate", None)
    body = {
        "type": f"{TYPE_BASE}{status}",
        "title": HTTPStatus(status).phrase,
        "status": str(status),
        "detail": exc.description,
        "systemCode": system_code(status, exc.error),
        "code": exc.error,
    }
    return json_response(body, status, headers, PROBLEM_JSON)
