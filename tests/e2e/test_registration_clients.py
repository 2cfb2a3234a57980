"""Dynamic client registration (RFC 7591, RFC 7592) end to end against a real ``tokensmith
serve`` on a loopback port, in ``initial_access_token`` mode with a token made by the CLI:
plain ``requests`` registers, reads, updates and deletes a client, and
requests-oauth2client (which has no registration API) gets tokens with the registered
credentials; oauth4webapi, from npm through node, discovers the endpoint, registers and
gets a token. The node test skips cleanly without node and npm."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import requests_oauth2client as roc

from tests.e2e.conftest import Server, running_server

pytestmark = pytest.mark.e2e

NODE = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("e2e-registration")
    db = f"sqlite:///{workdir / 'tokensmith.db'}"
    env = {
        "TOKENSMITH_REGISTRATION": "initial_access_token",
        "TOKENSMITH_REGISTRATION_SCOPES": "read write",
        "TOKENSMITH_CLIENT_CACHE_TTL": "0",
    }
    with running_server(workdir, db, "--log-json", extra_env=env) as s:
        yield s
        leaked = [v for v in s.secrets_seen if v in s.log()]
        assert not leaked, "a secret reached the server log"


def _initial_token(server: Server) -> str:
    made = server.cli("registration", "token", "create", "--expires-in", "600")
    token = str(made["initial_access_token"])
    server.secrets_seen.append(token)
    return token


def _endpoint(server: Server) -> str:
    meta = requests.get(server.base_url + "/.well-known/oauth-authorization-server", timeout=10)
    return str(meta.json()["registration_endpoint"])


def _oauth(server: Server, client_id: str, secret: str) -> roc.OAuth2Client:
    return roc.OAuth2Client.from_discovery_endpoint(
        server.base_url + "/.well-known/oauth-authorization-server",
        issuer=server.base_url,
        auth=roc.ClientSecretBasic(client_id, secret),
        testing=True,  # the loopback server speaks http
    )


def test_requests_registers_manages_and_deletes_a_client(server: Server) -> None:
    endpoint = _endpoint(server)
    assert endpoint == server.base_url + "/oauth/register"
    refused = requests.post(endpoint, json={"client_name": "x"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"

    token = _initial_token(server)
    metadata: dict[str, Any] = {
        "client_name": "Backend via requests",
        "grant_types": ["client_credentials"],
        "response_types": [],
        "scope": "read write",
    }
    r = requests.post(endpoint, json=metadata, headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    made = r.json()
    server.secrets_seen += [made["client_secret"], made["registration_access_token"]]
    issued = _oauth(server, made["client_id"], made["client_secret"]).client_credentials(
        scope="read"
    )
    assert issued.access_token and issued.scope == "read"

    uri, rat = made["registration_client_uri"], made["registration_access_token"]
    read = requests.get(uri, headers={"authorization": f"Bearer {rat}"}, timeout=10)
    assert read.status_code == 200 and read.json()["client_name"] == "Backend via requests"

    update = dict(metadata, client_id=made["client_id"], client_name="Renamed")
    put = requests.put(uri, json=update, headers={"authorization": f"Bearer {rat}"}, timeout=10)
    assert put.status_code == 200, put.text
    new_rat = put.json()["registration_access_token"]
    server.secrets_seen.append(new_rat)
    old = requests.get(uri, headers={"authorization": f"Bearer {rat}"}, timeout=10)
    assert old.status_code == 401

    gone = requests.delete(uri, headers={"authorization": f"Bearer {new_rat}"}, timeout=10)
    assert gone.status_code == 204
    with pytest.raises(roc.InvalidClient):
        _oauth(server, made["client_id"], made["client_secret"]).client_credentials(scope="read")


@pytest.fixture(scope="module")
def node_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/e2e/node copied to a temporary folder, its pinned packages installed there (so
    the work tree stays as it was)."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node or npm is not installed")
    project = tmp_path_factory.mktemp("node-clients")
    for name in ("package.json", "register.mjs"):
        shutil.copy(NODE / name, project / name)
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"npm install failed: {done.stderr.strip()[:300]}")
    return project


def test_oauth4webapi_registers_and_gets_a_token(server: Server, node_project: Path) -> None:
    token = _initial_token(server)
    done = subprocess.run(
        ["node", "register.mjs", server.base_url, token],
        cwd=node_project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    server.secrets_seen.append(out["registration_access_token"])
    assert out["token_type"].lower() == "bearer" and out["scope"] == "read"
    assert out["registration_client_uri"].endswith("/oauth/register/" + out["client_id"])
