"""private_key_jwt (RFC 7523 §2.2) against a real server, driven by an independent client
library, ``requests-oauth2client`` (``PrivateKeyJwt``): keys registered inline and at a
``jwks_uri`` served on loopback, every endpoint that authenticates clients, a replayed
assertion refused, and private_key_jwt with DPoP (RFC 9449) in one request."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jwskate import Jwk
from requests_oauth2client import DPoPToken, OAuth2Client, PrivateKeyJwt
from requests_oauth2client.exceptions import InvalidClient

from tests.e2e.conftest import TOKENSMITH, Server

pytestmark = pytest.mark.e2e

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def register(server: Server, *args: str) -> str:
    data = server.cli("clients", "create", "--name", "keyed", "--scope", "payments", *args)
    assert data["client_secret"] is None
    assert data["token_endpoint_auth_methods"] == ["private_key_jwt"]
    return str(data["client_id"])


def oauth(server: Server, client_id: str, key: Jwk) -> OAuth2Client:
    return OAuth2Client.from_discovery_endpoint(
        issuer=server.base_url,
        url=server.base_url + "/.well-known/oauth-authorization-server",
        auth=PrivateKeyJwt(client_id, key),
        testing=True,  # plain http on loopback
    )


@pytest.fixture(scope="module")
def jwks_host() -> Iterator[tuple[str, dict[str, Any]]]:
    """A loopback HTTP server whose ``/jwks`` answers the dict the test fills."""
    served: dict[str, Any] = {"keys": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(served).encode()
            self.send_response(200)
            self.send_header("content-type", "application/jwk-set+json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/jwks", served
    finally:
        httpd.shutdown()


@pytest.mark.parametrize("alg", ["ES256", "PS256", "EdDSA"])
def test_client_credentials_with_inline_keys(server: Server, alg: str) -> None:
    key = Jwk.generate(alg=alg, kid=f"k-{alg}")
    client_id = register(server, "--jwks", json.dumps({"keys": [dict(key.public_jwk())]}))
    shown = server.cli("clients", "show", client_id)
    assert shown["jwks"]["keys"][0]["kid"] == f"k-{alg}" and "d" not in shown["jwks"]["keys"][0]
    client = oauth(server, client_id, key)
    token = client.client_credentials(scope="payments")
    server.secrets_seen.append(token.access_token)
    info = client.introspect_token(token.access_token)  # aud: the introspection endpoint
    assert info["active"] is True and info["client_id"] == client_id
    client.revoke_access_token(token.access_token)
    assert client.introspect_token(token.access_token)["active"] is False


def test_keys_at_a_jwks_uri_and_a_rotation(server: Server, jwks_host: Any) -> None:
    uri, served = jwks_host
    first = Jwk.generate(alg="ES256", kid="first")
    served["keys"] = [dict(first.public_jwk())]
    client_id = register(server, "--jwks-uri", uri)
    assert server.cli("clients", "show", client_id)["jwks_uri"] == uri
    oauth(server, client_id, first).client_credentials(scope="payments")
    # the client rotates: a new kid makes the server fetch the set again
    second = Jwk.generate(alg="EdDSA", kid="second")
    served["keys"] = [dict(second.public_jwk())]
    time.sleep(10.5)  # one early refetch per 10 s per jwks_uri
    oauth(server, client_id, second).client_credentials(scope="payments")


def test_a_key_of_another_client_is_refused(server: Server) -> None:
    key, stranger = Jwk.generate(alg="ES256", kid="k"), Jwk.generate(alg="ES256", kid="k")
    client_id = register(server, "--jwks", json.dumps({"keys": [dict(key.public_jwk())]}))
    with pytest.raises(InvalidClient) as raised:
        oauth(server, client_id, stranger).client_credentials(scope="payments")
    assert raised.value.response.status_code == 401
    assert "signature" in (raised.value.description or "")


def test_a_replayed_assertion_is_refused(server: Server) -> None:
    key = Jwk.generate(alg="ES256", kid="k")
    client_id = register(server, "--jwks", json.dumps({"keys": [dict(key.public_jwk())]}))
    url = server.base_url + "/oauth/token"
    assertion = PrivateKeyJwt(client_id, key).client_assertion(url)
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    assert httpx.post(url, data=form).status_code == 200
    again = httpx.post(url, data=form)
    assert again.status_code == 401 and "used before" in again.json()["error_description"]


def test_private_key_jwt_with_dpop(server: Server) -> None:
    key = Jwk.generate(alg="PS256", kid="rsa")
    jwks = json.dumps({"keys": [dict(key.public_jwk())]})
    client_id = register(server, "--jwks", jwks, "--require-dpop")
    token = oauth(server, client_id, key).client_credentials(scope="payments", dpop=True)
    server.secrets_seen.append(token.access_token)
    assert isinstance(token, DPoPToken) and token.token_type == "DPoP"


def test_a_private_key_is_refused_at_registration(server: Server) -> None:
    key = Jwk.generate(alg="ES256", kid="k")
    done = subprocess.run(
        [
            TOKENSMITH,
            "clients",
            "create",
            "--name",
            "x",
            "--jwks",
            json.dumps({"keys": [dict(key)]}),
            "--database-url",
            server.database_url,
        ],
        env=server.env,
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "private key" in done.stderr
