"""Floor reference for the token benchmark: the least work a Python token endpoint can do.

A bare ASGI app (no framework) served by uvicorn exactly like tokensmith. For
``POST /oauth/token`` with ``grant_type=client_credentials`` it parses the form body,
checks the HTTP Basic secret (sha256 + hmac.compare_digest) and signs an RFC 9068 ES256
JWT with PyJWT. Nothing is stored. Its rate is the practical ceiling for Python here.

Env: FLOOR_KEY_FILE (PEM P-256 private key), FLOOR_CLIENT_SECRET, FLOOR_ISSUER.
``python bench/floor_app.py --gen-key PATH`` writes a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLIENT_ID = "bench-client"
ALLOWED_SCOPES = frozenset({"read", "write"})
AUDIENCE = "https://api.bench.local"
KID = "floor-es256"
TTL = 3600
JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]


def _load_key() -> ec.EllipticCurvePrivateKey:
    with open(os.environ["FLOOR_KEY_FILE"], "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("FLOOR_KEY_FILE must hold an EC private key")
    return key


SIGNING_KEY = _load_key() if "FLOOR_KEY_FILE" in os.environ else None
SECRET_DIGEST = hashlib.sha256(os.environ.get("FLOOR_CLIENT_SECRET", "").encode()).digest()
ISSUER = os.environ.get("FLOOR_ISSUER", "http://127.0.0.1")


def basic_client(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Return the client id when the Basic credentials are valid, else None."""
    value = next((v for k, v in headers if k == b"authorization"), b"")
    scheme, _, encoded = value.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).partition(b":")
    except binascii.Error:
        return None
    digest = hashlib.sha256(secret).digest()
    if client_id.decode() != CLIENT_ID or not hmac.compare_digest(digest, SECRET_DIGEST):
        return None
    return CLIENT_ID


def sign_token(client_id: str, scope: str) -> str:
    if SIGNING_KEY is None:
        raise RuntimeError("FLOOR_KEY_FILE is not set")
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": client_id,
        "aud": AUDIENCE,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "exp": now + TTL,
        "jti": uuid.uuid4().hex,
    }
    headers = {"typ": "at+jwt", "kid": KID}
    return jwt.encode(claims, SIGNING_KEY, algorithm="ES256", headers=headers)


def token_response(headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, dict[str, Any]]:
    client_id = basic_client(headers)
    if client_id is None:
        return 401, {"error": "invalid_client"}
    form = dict(parse_qsl(body.decode()))
    if form.get("grant_type") != "client_credentials":
        return 400, {"error": "unsupported_grant_type"}
    requested = form.get("scope", "read write").split()
    if not set(requested) <= ALLOWED_SCOPES:
        return 400, {"error": "invalid_scope"}
    scope = " ".join(requested)
    token = sign_token(client_id, scope)
    return 200, {"access_token": token, "token_type": "Bearer", "expires_in": TTL, "scope": scope}


async def read_body(receive: Receive) -> bytes:
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    body = await read_body(receive)
    if scope["method"] == "POST" and scope["path"] == "/oauth/token":
        status, payload = token_response(scope["headers"], body)
    else:
        status, payload = 404, {"error": "not_found"}
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


def write_key(path: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with open(path, "wb") as fh:
        fh.write(pem)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--gen-key":
        write_key(sys.argv[2])
    else:
        sys.exit("usage: floor_app.py --gen-key PATH (serve it with uvicorn floor_app:app)")
