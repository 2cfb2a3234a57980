"""DPoP (RFC 9449) against real servers, driven by an independent client library,
``requests-oauth2client``: DPoP-bound tokens from client_credentials, a client that must
use DPoP, server nonces handled by the library (§8), introspection's ``cnf`` (§6.2), and
a proof replayed to a server of two workers accepted once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from requests_oauth2client import DPoPKey, DPoPToken, OAuth2Client
from requests_oauth2client.exceptions import EndpointError

from tests.e2e.conftest import Server, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def nonce_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Nonces required, two workers on one SQLite file."""
    workdir = tmp_path_factory.mktemp("dpop-nonce")
    db = f"sqlite:///{workdir / 'tokensmith.db'}"
    env = {"TOKENSMITH_DPOP_NONCE": "true"}
    with running_server(workdir, db, "--workers", "2", "--log-json", extra_env=env) as s:
        yield s
        assert not [v for v in s.secrets_seen if v in s.log()], "a secret reached the log"


def oauth(server: Server, creds: tuple[str, str]) -> OAuth2Client:
    return OAuth2Client.from_discovery_endpoint(
        issuer=server.base_url,
        url=server.base_url + "/.well-known/oauth-authorization-server",
        auth=creds,
        testing=True,  # plain http on loopback
    )


def verified(server: Server, token: str) -> dict[str, Any]:
    jwks = jwt.PyJWKClient(server.base_url + "/.well-known/jwks.json")
    key = jwks.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=[key.algorithm_name], audience=server.base_url
    )
    return claims


def test_the_metadata_advertises_dpop(server: Server) -> None:
    meta = httpx.get(server.base_url + "/.well-known/oauth-authorization-server").json()
    assert meta["dpop_signing_alg_values_supported"] == ["ES256", "PS256", "EdDSA"]


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_client_credentials_with_dpop_gets_a_bound_jwt(server: Server, alg: str) -> None:
    creds = server.client("--name", f"bank {alg}", "--scope", "payments", "--require-dpop")
    key = DPoPKey.generate(alg=alg)
    token = oauth(server, creds).client_credentials(scope="payments", dpop=True, dpop_key=key)
    server.secrets_seen.append(token.access_token)
    assert isinstance(token, DPoPToken) and token.token_type == "DPoP"
    claims = verified(server, token.access_token)
    assert claims["cnf"] == {"jkt": key.dpop_jkt} and claims["scope"] == "payments"


def test_a_client_that_requires_dpop_is_refused_without_it(server: Server) -> None:
    creds = server.client("--name", "bank strict", "--require-dpop")
    with pytest.raises(EndpointError) as raised:
        oauth(server, creds).client_credentials(scope="read")
    assert raised.value.error == "invalid_dpop_proof"
    assert raised.value.response.status_code == 400


def test_introspection_of_an_opaque_dpop_token_shows_its_key(server: Server) -> None:
    creds = server.client("--name", "psp opaque", "--token-format", "opaque")
    client = oauth(server, creds)
    token = client.client_credentials(scope="read", dpop=True)
    server.secrets_seen.append(token.access_token)
    info = client.introspect_token(token.access_token)
    assert info["active"] is True and info["token_type"] == "DPoP"
    assert info["cnf"] == {"jkt": token.dpop_key.dpop_jkt}


def test_a_proof_is_accepted_once(server: Server) -> None:
    client_id, secret = server.client("--name", "replayer")
    url = server.base_url + "/oauth/token"
    proof = str(DPoPKey.generate().proof(htm="POST", htu=url))
    form = {"grant_type": "client_credentials"}
    statuses = [
        httpx.post(url, data=form, auth=(client_id, secret), headers={"DPoP": proof}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 400, 400]


def test_the_library_follows_the_servers_nonce(nonce_server: Server) -> None:
    creds = nonce_server.client("--name", "bank with nonces", "--require-dpop")
    key = DPoPKey.generate()
    token = oauth(nonce_server, creds).client_credentials(scope="read", dpop=True, dpop_key=key)
    nonce_server.secrets_seen.append(token.access_token)
    assert key.as_nonce, "the library had to fetch the server's nonce first"
    assert verified(nonce_server, token.access_token)["cnf"] == {"jkt": key.dpop_jkt}


def test_two_workers_accept_a_proof_once(nonce_server: Server) -> None:
    """The jti is kept in the database both workers share: of ten tries on ten new
    connections, one succeeds, whichever worker takes each."""
    client_id, secret = nonce_server.client("--name", "replayer")
    url = nonce_server.base_url + "/oauth/token"
    key, form = DPoPKey.generate(), {"grant_type": "client_credentials"}
    first = httpx.post(
        url,
        data=form,
        auth=(client_id, secret),
        headers={"DPoP": str(key.proof(htm="POST", htu=url))},
    )
    assert first.status_code == 400 and first.json()["error"] == "use_dpop_nonce"
    proof = str(key.proof(htm="POST", htu=url, nonce=first.headers["DPoP-Nonce"]))
    statuses = [
        httpx.post(url, data=form, auth=(client_id, secret), headers={"DPoP": proof}).status_code
        for _ in range(10)
    ]
    assert sorted(statuses) == [200] + [400] * 9
