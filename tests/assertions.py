"""``private_key_jwt`` client assertions (RFC 7523 §2.2) made the way a client makes them,
with PyJWT, and bent in every way a test needs."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from tests.dpop import DpopKey

ISSUER = "https://auth.example.test"
TOKEN_URL = ISSUER + "/oauth/token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class ClientKey:
    """A client's signing key and its public JWK (with a ``kid``)."""

    key: DpopKey
    kid: str

    @classmethod
    def generate(cls, alg: str = "ES256", kid: str | None = None) -> ClientKey:
        return cls(DpopKey.generate(alg), kid or uuid.uuid4().hex[:8])

    @property
    def alg(self) -> str:
        return self.key.alg

    @property
    def public_jwk(self) -> dict[str, Any]:
        return self.key.jwk | {"kid": self.kid}

    def jwks(self, *others: ClientKey) -> str:
        return json.dumps({"keys": [k.public_jwk for k in (self, *others)]})

    def assertion(
        self,
        client_id: str,
        now: float,
        *,
        aud: Any = TOKEN_URL,
        lifetime: int = 60,
        claims: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        """An assertion; ``claims``/``header`` override (``None`` removes), ``drop`` removes."""
        body: dict[str, Any] = {
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "jti": uuid.uuid4().hex,
            "iat": int(now),
            "exp": int(now) + lifetime,
        }
        body.update(claims or {})
        body = {k: v for k, v in body.items() if v is not None and k not in drop}
        head: dict[str, Any] = {"kid": self.kid}
        head.update(header or {})
        alg = head.pop("alg", self.alg)
        head = {k: v for k, v in head.items() if v is not None}
        return jwt.encode(body, self.key.private, algorithm=alg, headers=head)


def assertion_form(assertion: str, **form: str) -> dict[str, str]:
    return {"client_assertion_type": JWT_BEARER, "client_assertion": assertion, **form}
