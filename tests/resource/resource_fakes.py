"""Keys, RFC 9068 token minting and a fake issuer (metadata, JWKS, introspection)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER = "https://as.test"
AUDIENCE = "payments"
RS_CLIENT_ID = "payments-api"
RS_SECRET = "rs-secret:with/odd chars"


@dataclass
class Key:
    alg: str
    kid: str
    private: Any

    @property
    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        algo = {"ES256": ECAlgorithm, "RS256": RSAAlgorithm, "EdDSA": OKPAlgorithm}[self.alg]
        data = algo.to_jwk(public, as_dict=True)
        data.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return data


def make_key(alg: str, kid: str | None = None) -> Key:
    if alg == "ES256":
        private: Any = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(alg)
    return Key(alg, kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}", private)


def claims(now: float, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-42",
        "aud": AUDIENCE,
        "client_id": "merchant-7",
        "scope": "read write",
        "iat": int(now),
        "exp": int(now) + 300,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(key: Key, now: float, *, header: dict[str, Any] | None = None, **overrides: Any) -> str:
    headers = {"typ": "at+jwt", "kid": key.kid}
    headers.update(header or {})
    headers = {k: v for k, v in headers.items() if v is not None}
    return jwt.encode(claims(now, **overrides), key.private, algorithm=key.alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class FakeIssuer:
    keys: list[Key]
    clock: Callable[[], float] = time.time
    jwks_status: int = 200
    jwks_delay: float = 0.0
    introspection: dict[str, dict[str, Any]] = field(default_factory=dict)
    introspection_status: int = 200

    def __post_init__(self) -> None:
        self.jwks_fetches = 0
        self.metadata_fetches = 0
        self.introspections: list[httpx.Request] = []

    def _answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/oauth-authorization-server":
            self.metadata_fetches += 1
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "jwks_uri": ISSUER + "/.well-known/jwks.json",
                    "introspection_endpoint": ISSUER + "/o/introspect/",
                    "token_endpoint": ISSUER + "/o/token/",
                },
            )
        if path == "/.well-known/jwks.json":
            self.jwks_fetches += 1
            if self.jwks_status != 200:
                return httpx.Response(self.jwks_status)
            return httpx.Response(200, json={"keys": [k.jwk for k in self.keys]})
        if path == "/o/introspect/":
            self.introspections.append(request)
            if self.introspection_status != 200:
                return httpx.Response(self.introspection_status)
            form = dict(parse_qsl(request.content.decode()))
            auth = request.headers.get("authorization", "")
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            if (unquote_plus(cid), unquote_plus(secret)) != (RS_CLIENT_ID, RS_SECRET):
                return httpx.Response(401, json={"error": "invalid_client"})
            return httpx.Response(
                200, json=self.introspection.get(form["token"], {"active": False})
            )
        return httpx.Response(404)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.jwks_delay and request.url.path.endswith("jwks.json"):
            time.sleep(self.jwks_delay)
        return self._answer(request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        if self.jwks_delay and request.url.path.endswith("jwks.json"):
            await asyncio.sleep(self.jwks_delay)
        return self._answer(request)

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.async_handler))

    def sync_client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))


def unsigned(now: float, **overrides: Any) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": "x"}).encode())
    return f"{header}.{b64(json.dumps(claims(now, **overrides)).encode())}."


#: What a scripted consume endpoint answers, given the request path.
ConsumeAnswer = Callable[[str], httpx.Response]


def consumed(consent_id: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The consume endpoint's 200 answer for ``consent_id``."""
    return {
        "consent_id": consent_id,
        "status": "consumed",
        "authorization_details": details or [],
        "client_id": "merchant-7",
    }


class FakeConsents:
    """A fake issuer with tokensmith's consume endpoint (``POST
    /oauth/consents/consume``): 200 the first time per consent, 409 ``consumed`` after;
    or what ``answer`` says. Records every consume call."""

    def __init__(self, issuer: FakeIssuer, key: Key, now: float, details: list[Any]) -> None:
        self.issuer = issuer
        self.key = key
        self.now = now
        self.details = details
        self.consents: dict[str, str] = {}  # access token -> consent_id
        self.spent: set[str] = set()
        self.calls: list[httpx.Request] = []
        self.answer: ConsumeAnswer | None = None

    def _consume(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.answer is not None:
            return self.answer(request.url.path)
        auth = request.headers.get("authorization", "")
        cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if (unquote_plus(cid), unquote_plus(secret)) != (RS_CLIENT_ID, RS_SECRET):
            return httpx.Response(401, json={"error": "invalid_client"})
        token = dict(parse_qsl(request.content.decode()))["token"]
        consent_id = self.consents.get(token)
        if consent_id is None:
            return httpx.Response(400, json={"error": "invalid_token"})
        if consent_id in self.spent:
            return httpx.Response(409, json={"error": "consent_not_active", "status": "consumed"})
        self.spent.add(consent_id)
        return httpx.Response(200, json=consumed(consent_id, self.details))

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path in ("/oauth/consents/consume", "/spend"):
            return self._consume(request)
        return self.issuer.handler(request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return self.handler(request)

    def token(self, consent_id: str | None = "c-1", **overrides: Any) -> str:
        """A JWT access token of the consent (its details by default)."""
        overrides.setdefault("authorization_details", self.details)
        token = mint(self.key, self.now, consent_id=consent_id, **overrides)
        if consent_id is not None:
            self.consents[token] = consent_id
        return token
