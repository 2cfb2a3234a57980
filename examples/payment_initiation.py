"""A payments API that makes each approved payment once, and only that payment.

The partner app lodges a consent for one payment (amount, currency, payee), its user
approves it on the tokensmith consent page, and the app calls ``POST /payments`` with the
token it got. The guard lets the payment through only if it is exactly the approved one
(dynamic linking), and spends the consent at the server before the payment is made
(``consume=True``): the same token cannot pay twice, nor pay anything else.

    TOKENSMITH_ISSUER=http://127.0.0.1:8000 TOKENSMITH_AUDIENCE=http://127.0.0.1:8000 \\
    TOKENSMITH_CLIENT_ID=<api client> TOKENSMITH_CLIENT_SECRET=<its secret> \\
        python examples/payment_initiation.py

Environment:
    TOKENSMITH_ISSUER         issuer URL (metadata, JWKS and the consume endpoint follow)
    TOKENSMITH_AUDIENCE       expected ``aud`` of access tokens (default: payments)
    TOKENSMITH_CLIENT_ID      this API's own client, with the ``introspection`` scope: it
    TOKENSMITH_CLIENT_SECRET  spends consents at ``{issuer}/oauth/consents/consume``
    HOST / PORT               where to listen (default 127.0.0.1:8002)

``POST /payments`` takes ``{"amount": "120.00", "currency": "EUR", "creditor_iban":
"DE02...", "creditor_name": "Merchant A"}``: 201 the first time; 403
``insufficient_scope`` for another payment, or once the consent is spent. The partner
side is ``examples/partner_payment.py``; docs/consents.md walks through both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokensmith.resource import (
    AsyncValidator,
    BearerAuthMiddleware,
    TokenValidator,
    require_authorization_details,
)


def _amount(value: Any) -> Decimal | None:
    try:
        return Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        return None


def _iban(value: Any) -> str:
    return value.replace(" ", "").upper() if isinstance(value, str) else ""


async def is_the_approved_payment(detail: Mapping[str, Any], request: HTTPConnection) -> bool:
    """Dynamic linking: the payment asked for is the one the user approved, to the cent,
    in the same currency, to the same payee."""
    assert isinstance(request, Request)
    try:
        asked = await request.json()
    except ValueError:
        return False
    if not isinstance(asked, dict):
        return False
    approved = detail.get("instructedAmount") or {}
    payee = detail.get("creditorAccount") or {}
    amount = _amount(asked.get("amount"))
    return (
        amount is not None
        and amount == _amount(approved.get("amount"))
        and asked.get("currency") == approved.get("currency")
        and asked.get("creditor_name") == detail.get("creditorName")
        and _iban(asked.get("creditor_iban")) == _iban(payee.get("iban"))
    )


@require_authorization_details("payment_initiation", check=is_the_approved_payment, consume=True)
async def create_payment(request: Request) -> JSONResponse:
    """Runs once per consent: the guard has spent it at the server already."""
    asked = await request.json()
    payment = {
        "payment_id": "pay_" + uuid.uuid4().hex[:12],
        "consent_id": request.state.consent["consent_id"],
        "status": "accepted",
        **{k: asked.get(k) for k in ("amount", "currency", "creditor_iban", "creditor_name")},
    }
    return JSONResponse(payment, status_code=201)


def validator_from_env() -> TokenValidator:
    return TokenValidator(
        os.environ["TOKENSMITH_ISSUER"],
        os.environ.get("TOKENSMITH_AUDIENCE", "payments"),
        client_id=os.environ.get("TOKENSMITH_CLIENT_ID"),
        client_secret=os.environ.get("TOKENSMITH_CLIENT_SECRET"),
        realm="payments",
        dpop="allowed",  # partners with DPoP-bound tokens are welcome too
    )


def create_app(validator: AsyncValidator | None = None) -> Starlette:
    return Starlette(
        routes=[Route("/payments", create_payment, methods=["POST"])],
        middleware=[Middleware(BearerAuthMiddleware, validator=validator or validator_from_env())],
    )


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        create_app(),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8002")),
    )
