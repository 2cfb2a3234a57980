"""Two ``tokensmith serve`` processes on one PostgreSQL database and one secret key.

What one instance (or the CLI) changes, the other sees within the documented bounds:
client revocation within ``client_cache_ttl`` (2 s), key rotation within
``key_reload_interval`` (5 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
import pytest

from tests.conftest import PG_URL, _create_pg_database, _drop_pg_database
from tests.e2e.conftest import Server, running_server, wait_healthy

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="TOKENSMITH_TEST_POSTGRES_URL not set"),
]

CLIENT_CACHE_TTL = 2.0
KEY_RELOAD_INTERVAL = 5.0
#: Instances behind one name share one issuer: a token's ``iss`` must be every instance's.
ISSUER = "https://auth.multi.test"
T = TypeVar("T")


@dataclass
class Pair:
    a: Server
    b: Server
    shared: tuple[str, str]
    auditor: tuple[str, str]
    doomed: tuple[str, str]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    url, name = asyncio.run(_create_pg_database())
    workdir = tmp_path_factory.mktemp("multi")
    try:
        # A first, so that it alone makes the first signing key; B starts while the CLI works
        with (
            running_server(workdir / "a", url, "--issuer", ISSUER) as a,
            running_server(workdir / "b", url, "--issuer", ISSUER, wait=False) as b,
        ):
            shared, auditor, doomed = a.clients(
                ["--name", "shared", "--scope", "read"],
                ["--name", "auditor", "--scope", "introspection"],
                ["--name", "to revoke", "--scope", "read"],
            )
            wait_healthy(b)
            yield Pair(a, b, shared, auditor, doomed)
    finally:
        asyncio.run(_drop_pg_database(name))


def token(server: Server, creds: tuple[str, str]) -> httpx.Response:
    return httpx.post(
        server.base_url + "/oauth/token", data={"grant_type": "client_credentials"}, auth=creds
    )


def introspect(server: Server, caller: tuple[str, str], access_token: str) -> dict[str, Any]:
    r = httpx.post(server.base_url + "/oauth/introspect", data={"token": access_token}, auth=caller)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def eventually(check: Callable[[], T | None], within: float, step: float = 0.1) -> tuple[T, float]:
    """Poll ``check`` until it returns a value; returns it and how long that took."""
    start = time.monotonic()
    while True:
        value = check()
        elapsed = time.monotonic() - start
        if value is not None:
            return value, elapsed
        if elapsed > within:
            raise AssertionError(f"not seen within {within}s")
        time.sleep(step)


def verify_with_jwks(server: Server, access_token: str) -> dict[str, Any]:
    jwks = jwt.PyJWKClient(server.base_url + "/.well-known/jwks.json", cache_keys=False)
    key = jwks.get_signing_key_from_jwt(access_token)
    claims: dict[str, Any] = jwt.decode(
        access_token, key.key, algorithms=[key.algorithm_name], options={"verify_aud": False}
    )
    return claims


def test_a_client_created_by_the_cli_works_on_both_instances(pair: Pair) -> None:
    a, b, creds = pair.a, pair.b, pair.shared
    ta, tb = token(a, creds), token(b, creds)
    assert ta.status_code == tb.status_code == 200
    # each instance accepts the other's token
    assert introspect(b, creds, ta.json()["access_token"])["active"] is True
    assert introspect(a, creds, tb.json()["access_token"])["active"] is True


def test_a_dpop_proof_one_instance_accepted_is_refused_by_the_other(pair: Pair) -> None:
    """RFC 9449 §11.1: the proofs' ``jti`` are kept in the database both share."""
    from requests_oauth2client import DPoPKey

    key = DPoPKey.generate()
    proof = str(key.proof(htm="POST", htu=ISSUER + "/oauth/token"))

    def send(server: Server) -> httpx.Response:
        form = {"grant_type": "client_credentials"}
        url = server.base_url + "/oauth/token"
        return httpx.post(url, data=form, auth=pair.shared, headers={"DPoP": proof})

    first = send(pair.a)
    assert first.status_code == 200 and first.json()["token_type"] == "DPoP", first.text
    again = send(pair.b)
    assert again.status_code == 400 and again.json()["error"] == "invalid_dpop_proof"
    seen = introspect(pair.b, pair.shared, first.json()["access_token"])
    assert seen["cnf"] == {"jkt": key.dpop_jkt}


def test_cli_revocation_reaches_both_instances_within_the_cache_ttl(pair: Pair) -> None:
    a, b, creds, auditor = pair.a, pair.b, pair.doomed, pair.auditor
    tokens = [token(s, creds).json()["access_token"] for s in (a, b)]
    assert all(introspect(s, auditor, t)["active"] for s in (a, b) for t in tokens)

    a.cli("clients", "revoke", creds[0])

    def refused_everywhere() -> bool | None:
        done = all(token(s, creds).status_code == 401 for s in (a, b)) and not any(
            introspect(s, auditor, t)["active"] for s in (a, b) for t in tokens
        )
        return True if done else None

    _, elapsed = eventually(refused_everywhere, within=5.0)
    assert elapsed <= CLIENT_CACHE_TTL + 1.0
    r = token(b, creds)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")


def test_key_rotation_is_seen_by_both_instances_within_the_reload_interval(pair: Pair) -> None:
    a, b, creds = pair.a, pair.b, pair.shared
    old_token = token(a, creds).json()["access_token"]
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    new_kid = a.cli("keys", "rotate")["kid"]
    assert new_kid != old_kid

    def new_tokens() -> list[str] | None:
        issued = [token(s, creds).json()["access_token"] for s in (a, b)]
        kids = {jwt.get_unverified_header(t)["kid"] for t in issued}
        return issued if kids == {new_kid} else None

    issued, elapsed = eventually(new_tokens, within=KEY_RELOAD_INTERVAL + 2.0, step=0.25)
    assert elapsed <= KEY_RELOAD_INTERVAL + 1.5
    for t in [*issued, old_token]:  # the old key stays published while its tokens live
        for s in (a, b):
            assert verify_with_jwks(s, t)["client_id"] == creds[0]
            assert introspect(s, creds, t)["active"] is True
    published = {k["kid"] for k in httpx.get(b.base_url + "/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= published


def test_an_instance_joining_later_signs_with_the_shared_key(pair: Pair, tmp_path: Path) -> None:
    """It migrates nothing and makes no signing key of its own: its tokens carry the kid the
    others sign with, and verify at them."""
    a, creds = pair.a, pair.shared
    with running_server(tmp_path, a.database_url, "--issuer", ISSUER) as c:
        from_c = token(c, creds).json()["access_token"]
    from_a = token(a, creds).json()["access_token"]
    assert jwt.get_unverified_header(from_c)["kid"] == jwt.get_unverified_header(from_a)["kid"]
    assert verify_with_jwks(a, from_c)["client_id"] == creds[0]
    assert introspect(a, creds, from_c)["active"] is True
