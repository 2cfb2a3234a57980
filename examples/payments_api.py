"""A tiny payments API protected by tokensmith access tokens.

    TOKENSMITH_ISSUER=http://127.0.0.1:8000 python examples/payments_api.py

Environment:
    TOKENSMITH_ISSUER         issuer URL (metadata, JWKS and introspection are discovered)
    TOKENSMITH_AUDIENCE       expected ``aud`` of access tokens (default: payments)
    TOKENSMITH_CLIENT_ID      this API's client id, for introspecting opaque tokens (optional)
    TOKENSMITH_CLIENT_SECRET  its secret (optional)
    TOKENSMITH_INTROSPECTION_CACHE_TTL
                              seconds an introspection answer is reused (default 60): the
                              longest a revoked opaque token keeps working here
    HOST / PORT               where to listen (default 127.0.0.1:8001)

``GET /payments/`` needs a token with scope ``read``; ``GET /healthz`` is public.

The tokens' ``aud`` must be the audience: start the server with
``TOKENSMITH_AUDIENCE=payments`` (its default audience is its issuer URL).  For opaque
tokens the API's own client needs the ``introspection`` scope:
``tokensmith clients create --name "payments api" --scope introspection``.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokensmith.resource import (
    AccessToken,
    AsyncValidator,
    BearerAuthMiddleware,
    TokenValidator,
    require_scopes,
)

PAYMENTS = [
    {"id": "pay_001", "amount": "12.50", "currency": "GEL", "status": "settled"},
    {"id": "pay_002", "amount": "99.00", "currency": "GEL", "status": "pending"},
]


@require_scopes("read")
async def list_payments(request: Request) -> JSONResponse:
    token: AccessToken = request.state.access_token
    return JSONResponse(PAYMENTS, headers={"X-Client-Id": token.client_id or ""})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def validator_from_env() -> TokenValidator:
    return TokenValidator(
        os.environ["TOKENSMITH_ISSUER"],
        os.environ.get("TOKENSMITH_AUDIENCE", "payments"),
        client_id=os.environ.get("TOKENSMITH_CLIENT_ID"),
        client_secret=os.environ.get("TOKENSMITH_CLIENT_SECRET"),
        realm="payments",
        introspection_cache_ttl=float(os.environ.get("TOKENSMITH_INTROSPECTION_CACHE_TTL", "60")),
    )


def create_app(validator: AsyncValidator | None = None) -> Starlette:
    return Starlette(
        routes=[Route("/payments/", list_payments), Route("/healthz", healthz)],
        middleware=[Middleware(BearerAuthMiddleware, validator=validator or validator_from_env())],
    )


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        create_app(),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8001")),
    )
