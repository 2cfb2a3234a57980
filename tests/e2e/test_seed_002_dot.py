"""Seed 002 (``POST {{BASE_URL}}/o/token/``), driven by the document's own examples.

The curl, Python (requests), Node.js (axios) and PHP (curl) examples run as written in the
seed, with only ``{{BASE_URL}}`` and the credentials filled in, against a real server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server
from tokensmith.core.credentials import new_client_id, new_secret
from tokensmith.core.randomness import SystemRandomness

pytestmark = pytest.mark.e2e

CURL_BASIC = """\
# Create the Base64 encoded credentials
BASE64_CREDENTIAL=$(echo -n "your_client_id:your_client_secret" | base64)

# Request the access token
curl -X POST {{BASE_URL}}/o/token/ \\
-H "Authorization: Basic $BASE64_CREDENTIAL" \\
-H "Content-Type: application/x-www-form-urlencoded" \\
-d "grant_type=client_credentials&scope=read write"
"""

CURL_BODY = """\
curl -X POST {{BASE_URL}}/o/token/ \\
-H "Content-Type: application/x-www-form-urlencoded" \\
-d "grant_type=client_credentials&client_id=your_client_id&client_secret=your_client_secret&scope=read write"
"""  # noqa: E501 (the seed's line, verbatim)

# The seed's Python example; only the indentation the page lost is restored.
PYTHON_REQUESTS = '''\
import requests

def get_access_token(client_id, client_secret, scope='read write'):
    """Obtain an OAuth2 access token."""

    response = requests.post(
        '{{BASE_URL}}/o/token/',
        data={
            'grant_type': 'client_credentials',
            'client_id': client_id,
            'client_secret': client_secret,
            'scope': scope
        }
    )

    if response.status_code == 200:
        data = response.json()
        return data['access_token']
    else:
        raise Exception(f"Token request failed: {response.status_code}")

# Usage
token = get_access_token('your_client_id', 'your_client_secret')

# For admin access
admin_token = get_access_token('your_client_id', 'your_client_secret', 'read write admin')
'''

NODE_AXIOS = """\
const axios = require('axios');

async function getAccessToken(clientId, clientSecret, scope = 'read write') {
  const response = await axios.post(
    '{{BASE_URL}}/o/token/',
    new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
      scope: scope
    }),
    {
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded'
      }
    }
  );

  return response.data.access_token;
}
"""

PHP_CURL = """\
<?php
function getAccessToken($clientId, $clientSecret, $scope = 'read write') {
    $ch = curl_init();
    curl_setopt_array($ch, [
        CURLOPT_URL => "{{BASE_URL}}/o/token/",
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_POST => true,
        CURLOPT_HTTPHEADER => [
            "Content-Type: application/x-www-form-urlencoded"
        ],
        CURLOPT_POSTFIELDS => http_build_query([
            'grant_type' => 'client_credentials',
            'client_id' => $clientId,
            'client_secret' => $clientSecret,
            'scope' => $scope
        ])
    ]);

    $response = curl_exec($ch);
    curl_close($ch);

    $data = json_decode($response, true);
    return $data['access_token'];
}

$token = getAccessToken('your_client_id', 'your_client_secret');
?>
"""


def fill(example: str, server: Server, client_id: str, secret: str) -> str:
    return (
        example.replace("{{BASE_URL}}", server.base_url)
        .replace("your_client_id", client_id)
        .replace("your_client_secret", secret)
    )


@pytest.fixture(scope="module")
def creds(server: Server) -> tuple[str, str]:
    return server.client("--name", "seed 002 merchant", "--scope", "read write admin")


def introspect(server: Server, creds: tuple[str, str], token: str) -> dict[str, object]:
    server.secrets_seen.append(token)
    r = httpx.post(server.base_url + "/oauth/introspect", data={"token": token}, auth=creds)
    assert r.status_code == 200
    body: dict[str, object] = r.json()
    return body


def bash(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=30, check=False
    )


def assert_seed_response(body: dict[str, object], scope: str = "read write") -> None:
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 36000
    assert body["scope"] == scope
    assert isinstance(body["access_token"], str) and body["access_token"]


def test_generated_credentials_base64_fit_on_one_line(
    server: Server, creds: tuple[str, str]
) -> None:
    """``base64`` wraps at 76 columns; ``id:secret`` must encode to at most that, or the
    ``$(echo -n id:secret | base64)`` of the curl example breaks the header in two."""
    client_id, secret = creds
    out = bash(f'echo -n "{client_id}:{secret}" | base64').stdout
    assert out.count("\n") == 1 and len(out.strip()) <= 76
    rand = SystemRandomness()
    for _ in range(200):
        assert len(f"{new_client_id(rand)}:{new_secret(rand)}") <= 57  # 57 bytes -> 76 chars


def test_curl_basic_auth_example_works_with_generated_credentials(
    server: Server, creds: tuple[str, str]
) -> None:
    done = bash(fill(CURL_BASIC, server, *creds))
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert_seed_response(body)
    assert introspect(server, creds, body["access_token"])["active"] is True


def test_curl_body_parameters_example(server: Server, creds: tuple[str, str]) -> None:
    done = bash(fill(CURL_BODY, server, *creds))
    assert done.returncode == 0, done.stderr
    assert_seed_response(json.loads(done.stdout))


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ("scope=read", 400, "invalid_request"),
        (
            "grant_type=client_credentials&client_id=your_client_id&client_secret=nope",
            401,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials&client_id=nobody&client_secret=nope",
            401,
            "invalid_client",
        ),
        (
            "grant_type=password&client_id=your_client_id&client_secret=your_client_secret",
            400,
            "unsupported_grant_type",
        ),
    ],
    ids=["missing-grant-type", "wrong-secret", "unknown-client", "other-grant"],
)
def test_seed_error_table_by_curl(
    server: Server, creds: tuple[str, str], data: str, status: int, error: str
) -> None:
    script = fill(
        f'curl -s -w "\\n%{{http_code}}" -X POST {{{{BASE_URL}}}}/o/token/ '
        f'-H "Content-Type: application/x-www-form-urlencoded" -d "{data}"',
        server,
        *creds,
    )
    body, code = bash(script).stdout.rsplit("\n", 1)
    assert int(code) == status
    assert json.loads(body)["error"] == error


def test_python_requests_example(server: Server, creds: tuple[str, str]) -> None:
    program = fill(PYTHON_REQUESTS, server, *creds) + "\nprint(token)\nprint(admin_token)\n"
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    token, admin_token = done.stdout.split()
    assert introspect(server, creds, token)["scope"] == "read write"
    assert introspect(server, creds, admin_token)["scope"] == "read write admin"


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with axios installed from the npm registry."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node or npm is not installed")
    where = tmp_path_factory.mktemp("node")
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "axios"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"npm install axios failed: {done.stderr.strip()[:300]}")
    yield where


def test_nodejs_axios_example(server: Server, creds: tuple[str, str], node_modules: Path) -> None:
    client_id, secret = creds
    program = fill(NODE_AXIOS, server, client_id, secret) + textwrap.dedent(
        f"""
        getAccessToken('{client_id}', '{secret}')
          .then((token) => console.log(token))
          .catch((err) => {{ console.error(err.message); process.exit(1); }});
        """
    )
    (node_modules / "seed.js").write_text(program)
    done = subprocess.run(
        ["node", "seed.js"],
        cwd=node_modules,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert introspect(server, creds, done.stdout.strip())["active"] is True


def test_php_curl_example(server: Server, creds: tuple[str, str], tmp_path: Path) -> None:
    if not shutil.which("php"):
        pytest.skip("php is not installed (apt-get install php-cli php-curl)")
    (tmp_path / "seed.php").write_text(fill(PHP_CURL, server, *creds))
    (tmp_path / "run.php").write_text("<?php require __DIR__ . '/seed.php'; echo $token;\n")
    done = subprocess.run(
        ["php", "run.php"], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )
    if (
        "curl_init" in done.stdout + done.stderr
        and "undefined function" in done.stdout + done.stderr
    ):
        pytest.skip("php-curl is not installed")
    assert done.returncode == 0, done.stdout + done.stderr
    token = done.stdout.strip()
    assert introspect(server, creds, token)["scope"] == "read write"
