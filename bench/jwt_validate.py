"""Local RFC 9068 JWT validation throughput on one core (target >= 10,000/s).

Times are process CPU time (``time.process_time``), best of 3, so that other load on a
shared machine inflates them less.

    .venv/bin/python bench/jwt_validate.py

Keys are fetched once (from an in-memory JWKS) and kept as ``jwt.PyJWK`` objects.

* "full": the verified-token cache is off, so every call parses the token, verifies the
  signature and checks typ/iss/aud/exp/nbf/iat (the signature dominates; the OpenSSL
  floor is printed alongside for comparison);
* "repeated": the default configuration with the same token presented again (the common
  case: a client reuses its token for many requests), where only time claims are checked.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tokensmith.resource import TokenValidator

ISSUER = "https://as.test"


def keys() -> dict[str, tuple[Any, dict[str, Any]]]:
    out = {}
    for alg, private, algo in (
        ("ES256", ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
        ("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate(), OKPAlgorithm),
    ):
        jwk = algo.to_jwk(private.public_key(), as_dict=True)
        jwk.update({"kid": alg, "alg": alg, "use": "sig"})
        out[alg] = (private, jwk)
    return out


def openssl_floor(alg: str, private: Any, n: int = 2000) -> float:
    """Seconds per bare signature verification with ``cryptography`` (no JWT work)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    msg = b"x" * 400
    pub = private.public_key()
    verify: Callable[[], None]
    if alg == "ES256":
        sig = private.sign(msg, ec.ECDSA(hashes.SHA256()))

        def verify() -> None:
            pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
    elif alg == "RS256":
        sig = private.sign(msg, padding.PKCS1v15(), hashes.SHA256())

        def verify() -> None:
            pub.verify(sig, msg, padding.PKCS1v15(), hashes.SHA256())
    else:
        sig = private.sign(msg)

        def verify() -> None:
            pub.verify(sig, msg)

    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(n):
            verify()
        best = min(best, (time.process_time() - start) / n)
    return best


async def rate(validator: TokenValidator, token: str, n: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(n):
            await validator.validate(token)
        best = min(best, time.process_time() - start)
    return n / best


async def main() -> None:
    material = keys()
    jwks = {"keys": [jwk for _, jwk in material.values()]}

    def make(cache: int) -> TokenValidator:
        http = httpx.AsyncClient(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, json=jwks))
        )
        return TokenValidator(
            ISSUER,
            "payments",
            jwks_uri=ISSUER + "/jwks",
            http_client=http,
            discover=False,
            verified_cache_size=cache,
        )

    full, cached = make(0), make(4096)
    now = int(time.time())
    print(f"{'alg':6s} {'full /s':>10s} {'openssl floor /s':>17s} {'repeated /s':>12s}")
    for alg, (private, _) in material.items():
        token = jwt.encode(
            {
                "iss": ISSUER,
                "sub": "user-1",
                "aud": "payments",
                "client_id": "merchant-7",
                "scope": "read write",
                "iat": now,
                "exp": now + 3600,
                "jti": uuid.uuid4().hex,
            },
            private,
            algorithm=alg,
            headers={"typ": "at+jwt", "kid": alg},
        )
        await full.validate(token)  # loads the JWKS once
        await cached.validate(token)
        r_full = await rate(full, token, 5_000)
        r_cached = await rate(cached, token, 200_000)
        floor = 1 / openssl_floor(alg, private)
        print(f"{alg:6s} {r_full:10,.0f} {floor:17,.0f} {r_cached:12,.0f}")
    print(f"JWKS fetches: {full.jwks_fetches} + {cached.jwks_fetches}")


if __name__ == "__main__":
    asyncio.run(main())
