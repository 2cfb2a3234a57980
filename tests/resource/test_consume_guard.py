"""Single-use consents at the API: ``require_authorization_details(..., consume=True)`` and
``validator.consume(token)`` spend the token's consent at the server before anything runs.

The server side is faked: a consume endpoint that answers 200 once per consent, then 409,
as ``POST /oauth/consents/consume`` does; every other answer it may give is tabled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import resource_fakes
from dpop_fakes import API, proof, public_jwk, thumbprint
from resource_fakes import (
    AUDIENCE,
    ISSUER,
    RS_CLIENT_ID,
    RS_SECRET,
    ConsumeAnswer,
    FakeConsents,
    FakeIssuer,
    make_key,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tokensmith.resource import (
    AccessToken,
    BearerAuthMiddleware,
    ConsentNotActive,
    DetailsToken,
    InvalidToken,
    SyncTokenValidator,
    TokenValidator,
    ValidationUnavailable,
    require_authorization_details,
)

NOW = 1_700_000_000.0
KEY = make_key("ES256")
PAYMENT = {
    "type": "payment_initiation",
    "instructedAmount": {"currency": "EUR", "amount": "120.00"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02120300000000202051"},
}
CONSUME_URL = ISSUER + "/oauth/consents/consume"


def clock() -> float:
    return NOW


def exact_payment(detail: Mapping[str, Any], request: HTTPConnection) -> bool:
    return bool(detail["instructedAmount"]["amount"] == request.query_params.get("amount"))


def consumed(consent_id: str) -> dict[str, Any]:
    return resource_fakes.consumed(consent_id, [PAYMENT])


@pytest.fixture
def server() -> FakeConsents:
    return FakeConsents(FakeIssuer([KEY], clock=clock), KEY, NOW, [PAYMENT])


def async_validator(server: FakeConsents, **kwargs: Any) -> TokenValidator:
    return TokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server.async_handler)),
        clock=clock,
        realm="payments",
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
        **kwargs,
    )


def sync_validator(server: FakeConsents, **kwargs: Any) -> SyncTokenValidator:
    return SyncTokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=httpx.Client(transport=httpx.MockTransport(server.handler)),
        clock=clock,
        realm="payments",
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
        **kwargs,
    )


class Payments:
    """An API with one guarded endpoint that counts the payments it made."""

    def __init__(self, validator: Any) -> None:
        self.made: list[Mapping[str, Any]] = []

        @require_authorization_details(
            "payment_initiation", check=exact_payment, scopes=["write"], consume=True
        )
        async def pay(request: Request) -> JSONResponse:
            self.made.append(request.state.consent)
            return JSONResponse({"paid": request.state.consent["consent_id"]}, status_code=201)

        app = Starlette(
            routes=[Route("/pay", pay, methods=["POST"])],
            middleware=[Middleware(BearerAuthMiddleware, validator=validator)],
        )
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rs")

    async def pay(self, token: str, amount: str = "120.00") -> httpx.Response:
        return await self.http.post(
            f"/pay?amount={amount}", headers={"authorization": f"Bearer {token}"}
        )


async def test_a_consent_pays_once_then_is_refused_as_spent(server: FakeConsents) -> None:
    api = Payments(async_validator(server))
    token = server.token("c-1")
    first = await api.pay(token)
    assert first.status_code == 201 and first.json() == {"paid": "c-1"}
    again = await api.pay(token)
    assert again.status_code == 403, again.text
    challenge = again.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="payments", error="insufficient_scope"')
    assert 'error_description="consent already used (consumed)"' in challenge
    assert "scope=" not in challenge
    assert again.json()["error"] == "insufficient_scope"
    assert len(api.made) == 1 and len(server.calls) == 2


async def test_the_consume_call_carries_the_token_and_the_apis_credentials(
    server: FakeConsents,
) -> None:
    api = Payments(async_validator(server))
    token = server.token("c-1")
    assert (await api.pay(token)).status_code == 201
    (call,) = server.calls
    assert str(call.url) == CONSUME_URL and call.method == "POST"
    assert dict(parse_qsl(call.content.decode())) == {"token": token}
    assert call.headers["authorization"].startswith("Basic ")


async def test_a_refused_check_never_spends_the_consent(server: FakeConsents) -> None:
    """Another amount is refused before the server is asked: the consent stays usable."""
    api = Payments(async_validator(server))
    token = server.token("c-1")
    refused = await api.pay(token, amount="999.00")
    assert refused.status_code == 403 and "payment_initiation" in refused.text
    assert server.calls == []
    assert (await api.pay(token)).status_code == 201


async def test_a_token_without_consent_is_refused_without_asking(server: FakeConsents) -> None:
    api = Payments(async_validator(server))
    r = await api.pay(server.token(None))
    assert r.status_code == 403 and "carries no consent" in r.headers["www-authenticate"]
    assert server.calls == [] and api.made == []


def _json(status: int, body: Any) -> ConsumeAnswer:
    return lambda _path: httpx.Response(status, json=body)


def _text(status: int, body: str) -> ConsumeAnswer:
    return lambda _path: httpx.Response(status, text=body)


def _unreachable(_path: str) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


def _timeout(_path: str) -> httpx.Response:
    raise httpx.ReadTimeout("read timed out")


#: (id, what the consume endpoint does, status, error code, words of the description)
FAILURES = [
    ("spent", _json(409, {"error": "consent_not_active", "status": "consumed"}), 403,
     "insufficient_scope", "consent already used"),
    ("revoked", _json(409, {"error": "consent_not_active", "status": "revoked"}), 403,
     "insufficient_scope", "consent not active (revoked)"),
    ("expired", _json(409, {"error": "consent_not_active", "status": "expired"}), 403,
     "insufficient_scope", "consent not active (expired)"),
    ("409-no-status", _json(409, {"error": "consent_not_active"}), 403,
     "insufficient_scope", "consent not active"),
    ("token-revoked-at-server", _json(400, {"error": "invalid_token"}), 401,
     "invalid_token", "token is not active"),
    ("not-single-use", _json(400, {"error": "invalid_request"}), 403,
     "insufficient_scope", "no single-use consent"),
    ("api-credentials-refused", _json(401, {"error": "invalid_client"}), 503,
     "temporarily_unavailable", None),
    ("server-error", _json(500, {"error": "server_error"}), 503, "temporarily_unavailable", None),
    ("html-200", _text(200, "<html>ok</html>"), 503, "temporarily_unavailable", None),
    ("200-not-consumed", _json(200, {"consent_id": "c-1", "status": "authorized"}), 503,
     "temporarily_unavailable", None),
    ("200-another-consent", _json(200, consumed("c-2")), 503, "temporarily_unavailable", None),
    ("409-not-json", _text(409, "conflict"), 503, "temporarily_unavailable", None),
    ("unknown-400", _json(400, {"error": "unsupported"}), 503, "temporarily_unavailable", None),
    ("unreachable", _unreachable, 503, "temporarily_unavailable", None),
    ("timeout", _timeout, 503, "temporarily_unavailable", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "status", "error", "words"),
    [pytest.param(*row[1:], id=row[0]) for row in FAILURES],
)
async def test_the_endpoint_runs_only_when_the_server_spent_the_consent(
    server: FakeConsents, answer: ConsumeAnswer, status: int, error: str, words: str | None
) -> None:
    server.answer = answer
    api = Payments(async_validator(server))
    r = await api.pay(server.token("c-1"))
    assert r.status_code == status, r.text
    assert api.made == []
    assert r.json()["error"] == error
    if status == 503:
        assert r.headers["retry-after"] == "5" and "www-authenticate" not in r.headers
    else:
        assert f'error="{error}"' in r.headers["www-authenticate"]
        assert words is not None and words in r.json()["error_description"]


#: The same table through ``consume()`` itself: the exception each answer raises (an
#: answer for another consent is the guard's to catch: it knows the token's consent_id).
RAISES = {403: ConsentNotActive, 401: InvalidToken, 503: ValidationUnavailable}


@pytest.mark.parametrize(
    ("answer", "status"),
    [pytest.param(row[1], row[2], id=row[0]) for row in FAILURES if "another" not in row[0]],
)
async def test_consume_raises_for_every_refusal_sync_and_async(
    server: FakeConsents, answer: ConsumeAnswer, status: int
) -> None:
    server.answer = answer
    token = server.token("c-1")
    with pytest.raises(RAISES[status]) as caught:
        await async_validator(server).consume(token)
    assert caught.value.status_code == status
    with pytest.raises(RAISES[status]) as caught_sync:
        sync_validator(server).consume(token)
    assert caught_sync.value.status_code == status


async def test_consume_returns_the_consent_once_sync_and_async(server: FakeConsents) -> None:
    token, other = server.token("c-1"), server.token("c-2")
    assert await async_validator(server).consume(token) == consumed("c-1")
    assert sync_validator(server).consume(other) == consumed("c-2")
    with pytest.raises(ConsentNotActive) as spent:
        sync_validator(server).consume(token)
    assert spent.value.consent_status == "consumed"
    with pytest.raises(ConsentNotActive):
        await async_validator(server).consume(other)


async def test_an_explicit_consume_endpoint_is_used(server: FakeConsents) -> None:
    url = "https://consents.test/spend"
    validator = async_validator(server, consume_endpoint=url)
    assert validator.consume_endpoint == url
    await validator.consume(server.token("c-1"))
    assert str(server.calls[0].url) == url


def test_the_endpoint_defaults_to_the_issuers_consume_path() -> None:
    v = SyncTokenValidator(ISSUER + "/", AUDIENCE)
    assert v.consume_endpoint == CONSUME_URL


async def test_consume_without_the_apis_client_id_is_unavailable(server: FakeConsents) -> None:
    validator = TokenValidator(ISSUER, AUDIENCE, http_client=httpx.AsyncClient())
    with pytest.raises(ValidationUnavailable):
        await validator.consume(server.token("c-1"))


class SyncBacked:
    """An API whose validator is synchronous: validation and consume run in a thread."""

    realm = "payments"

    def __init__(self, inner: SyncTokenValidator) -> None:
        self.inner = inner
        self.consume = inner.consume

    async def validate(self, token: str) -> AccessToken:
        return await run_in_threadpool(self.inner.validate, token)


async def test_a_synchronous_validators_consume_serves_the_guard(server: FakeConsents) -> None:
    api = Payments(SyncBacked(sync_validator(server)))
    token = server.token("c-9")
    assert (await api.pay(token)).status_code == 201
    assert (await api.pay(token)).status_code == 403
    assert len(api.made) == 1


async def test_fastapi_style_use_hands_over_the_consent(server: FakeConsents) -> None:
    guard = require_authorization_details(
        "payment_initiation", validator=async_validator(server), consume=True
    )
    token = server.token("c-3")
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "query_string": b"",
    }
    got = await guard(Request(scope))
    assert isinstance(got, DetailsToken)
    assert got.consent == consumed("c-3") and got.details == (PAYMENT,)
    assert "consume=True" in repr(guard)


async def test_a_dpop_bound_token_spends_its_consent_with_its_proof(server: FakeConsents) -> None:
    """The token of ``Authorization: DPoP`` is what the server is asked to spend; the
    proof stays with the API."""
    holder = make_key("ES256")
    token = server.token("c-5", cnf={"jkt": thumbprint(public_jwk(holder))})
    api = Payments(async_validator(server, dpop="allowed"))
    api.http.base_url = httpx.URL(API)

    async def pay() -> httpx.Response:
        url = API + "/pay"
        headers = {
            "authorization": f"DPoP {token}",
            "dpop": proof(holder, token, htm="POST", htu=url, iat=NOW),
        }
        return await api.http.post("/pay?amount=120.00", headers=headers)

    made = await pay()
    assert made.status_code == 201, made.text
    assert dict(parse_qsl(server.calls[0].content.decode())) == {"token": token}
    again = await pay()
    assert again.status_code == 403
    assert again.headers["www-authenticate"].startswith('Bearer realm="payments", DPoP')
    assert 'error="insufficient_scope"' in again.headers["www-authenticate"]
