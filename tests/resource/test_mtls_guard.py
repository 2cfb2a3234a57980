"""The guard with certificate-bound tokens (RFC 8705 §3): the token's ``cnf.x5t#S256``
against the certificate the TLS proxy forwarded, JWT and introspected, async and sync, in
each mode; the header read from trusted proxies only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from dpop_fakes import proof, public_jwk, thumbprint
from resource_fakes import AUDIENCE, ISSUER, RS_CLIENT_ID, RS_SECRET, FakeIssuer, make_key, mint
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.certs import make_ca, make_client_cert

from tokensmith.resource import (
    BearerAuthMiddleware,
    CertificateBinding,
    InvalidToken,
    SyncTokenValidator,
    TokenValidator,
    require_scopes,
)

NOW = 1_700_000_000.0
SIGNER = make_key("ES256")
CA = make_ca()
CERT = make_client_cert(CA, "bank-client")
OTHER = make_client_cert(CA, "other-client")
BOUND = mint(SIGNER, NOW, cnf={"x5t#S256": CERT.thumbprint})
UNBOUND = mint(SIGNER, NOW)
PROXY = "127.0.0.1"  # httpx's ASGITransport's default peer


def clock() -> float:
    return NOW


@require_scopes("read")
async def read(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.access_token.sub})


def make_validator(issuer: FakeIssuer, mtls: str = "allowed", **kwargs: Any) -> TokenValidator:
    kwargs.setdefault("trusted_proxies", () if mtls == "off" else (PROXY,))
    return TokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=issuer.async_client(),
        clock=clock,
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
        mtls=mtls,  # type: ignore[arg-type]
        **kwargs,
    )


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer([SIGNER], clock=clock)


@pytest.fixture
def call(issuer: FakeIssuer) -> Callable[..., Any]:
    async def go(
        token: str,
        cert: Any = None,
        *,
        mtls: str = "allowed",
        peer: str = PROXY,
        header: str = "X-Client-Cert",
        raw: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        validator = make_validator(issuer, mtls, **kwargs)
        app = Starlette(
            routes=[Route("/read", read)],
            middleware=[Middleware(BearerAuthMiddleware, validator=validator)],
        )
        headers = {"Authorization": f"Bearer {token}"}
        if cert is not None or raw is not None:
            headers[header] = raw if raw is not None else cert.escaped
        transport = httpx.ASGITransport(app=app, client=(peer, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get("/read", headers=headers)

    return go


def invalid_token(r: httpx.Response, words: str = "") -> None:
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge and words in challenge, challenge


async def test_a_bound_token_with_its_certificate_is_accepted(call):
    r = await call(BOUND, CERT)
    assert r.status_code == 200, r.headers.get("www-authenticate")


@pytest.mark.parametrize(
    ("token", "cert", "options", "words"),
    [
        (BOUND, None, {}, "none was sent"),
        (BOUND, OTHER, {}, "another TLS client certificate"),
        (BOUND, CERT, {"peer": "198.51.100.9"}, "none was sent"),
        (BOUND, CERT, {"mtls": "off"}, "needs mutual TLS"),
        (BOUND, None, {"raw": "-----BEGIN%20CERTIFICATE-----%0Ajunk"}, "client certificate"),
        (BOUND, CERT, {"header": "X-Other"}, "none was sent"),
        (UNBOUND, CERT, {"mtls": "required"}, "certificate-bound tokens only"),
    ],
    ids=[
        "no certificate",
        "another certificate",
        "header sent by the client itself",
        "guard without mtls",
        "malformed header",
        "certificate in another header",
        "unbound token where binding is required",
    ],
)
async def test_a_bound_token_without_its_certificate_is_refused(call, token, cert, options, words):
    invalid_token(await call(token, cert, **options), words)


async def test_unbound_tokens_pass_unless_binding_is_required(call):
    assert (await call(UNBOUND)).status_code == 200
    assert (await call(UNBOUND, CERT)).status_code == 200
    assert (await call(UNBOUND, mtls="off")).status_code == 200
    assert (await call(BOUND, CERT, mtls="required")).status_code == 200


async def test_an_opaque_token_is_bound_by_its_introspection_cnf(issuer, call):
    issuer.introspection["opaque-bound"] = {
        "active": True,
        "token_type": "Bearer",
        "client_id": "c1",
        "sub": "user-42",
        "scope": "read",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": NOW + 600,
        "cnf": {"x5t#S256": CERT.thumbprint},
    }
    assert (await call("opaque-bound", CERT)).status_code == 200
    invalid_token(await call("opaque-bound", OTHER), "another")
    invalid_token(await call("opaque-bound"), "none was sent")


async def test_the_async_validator_checks_the_binding_itself(issuer):
    validator = make_validator(issuer)
    binding = validator.mtls
    ok = binding.certificate_of(CERT.escaped, PROXY)
    token = await validator.authenticate(
        "bearer", BOUND, method="GET", url="http://api/read", certificate=ok
    )
    assert token.sub == "user-42"
    with pytest.raises(InvalidToken):
        await validator.authenticate("bearer", BOUND, method="GET", url="http://api/read")
    assert binding.certificate_of(CERT.escaped, "198.51.100.9") is None


def test_the_sync_validator_checks_the_binding(issuer):
    validator = SyncTokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=issuer.sync_client(),
        clock=clock,
        mtls="required",
        trusted_proxies=(PROXY,),
    )
    cert = validator.mtls.certificate_of(CERT.b64_der, PROXY)
    token = validator.authenticate(
        "bearer", BOUND, method="GET", url="http://api/read", certificate=cert
    )
    assert token.sub == "user-42"
    other = validator.mtls.certificate_of(OTHER.escaped, PROXY)
    for presented in (None, other):
        with pytest.raises(InvalidToken):
            validator.authenticate(
                "bearer", BOUND, method="GET", url="http://api/read", certificate=presented
            )
    with pytest.raises(InvalidToken):
        validator.authenticate(
            "bearer", UNBOUND, method="GET", url="http://api/read", certificate=cert
        )


@pytest.mark.parametrize(
    ("mode", "proxies"), [("fast", (PROXY,)), ("allowed", ())], ids=["unknown mode", "no proxies"]
)
def test_the_binding_is_configured_sensibly(mode, proxies):
    with pytest.raises(ValueError):
        CertificateBinding(mode, trusted_proxies=proxies)


@pytest.mark.parametrize(("cert", "status"), [(CERT, 200), (OTHER, 401), (None, 401)])
async def test_dpop_and_mtls_together_check_both_bindings(issuer, cert, status):
    key = make_key("ES256")
    both = {"jkt": thumbprint(public_jwk(key)), "x5t#S256": CERT.thumbprint}
    token = mint(SIGNER, NOW, cnf=both)
    validator = make_validator(issuer, dpop="allowed")
    app = Starlette(
        routes=[Route("/read", read)],
        middleware=[Middleware(BearerAuthMiddleware, validator=validator)],
    )
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof(key, token, iat=NOW)}
    if cert is not None:
        headers["X-Client-Cert"] = cert.escaped
    transport = httpx.ASGITransport(app=app, client=(PROXY, 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        r = await client.get("/read", headers=headers)
    assert r.status_code == status, r.headers.get("www-authenticate")


def test_the_sync_validator_checks_an_introspected_binding(issuer):
    issuer.introspection["opaque-bound"] = {
        "active": True,
        "token_type": "Bearer",
        "client_id": "c1",
        "sub": "user-42",
        "scope": "read",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": NOW + 600,
        "cnf": {"x5t#S256": CERT.thumbprint},
    }
    validator = SyncTokenValidator(
        ISSUER,
        AUDIENCE,
        http_client=issuer.sync_client(),
        clock=clock,
        client_id=RS_CLIENT_ID,
        client_secret=RS_SECRET,
        mtls="allowed",
        trusted_proxies=(PROXY,),
    )
    url = "http://api/read"
    cert = validator.mtls.certificate_of(CERT.escaped, PROXY)
    assert validator.authenticate("bearer", "opaque-bound", method="GET", url=url, certificate=cert)
    other = validator.mtls.certificate_of(OTHER.escaped, PROXY)
    with pytest.raises(InvalidToken):
        validator.authenticate("bearer", "opaque-bound", method="GET", url=url, certificate=other)
