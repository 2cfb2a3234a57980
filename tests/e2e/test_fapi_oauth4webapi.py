"""private_key_jwt, DPoP and PAR driven by oauth4webapi (npm), a JavaScript client
library independent of tokensmith and of the Python ones, against a real ``tokensmith
serve`` on a loopback port: client_credentials with introspection and revocation, and the
authorization-code flow pushed by PAR, its code redeemed and its refresh token rotated,
every token bound to the client's DPoP key.

The library is installed from ``tests/e2e/js/package-lock.json`` on first use, in a
folder outside the work tree; without node and npm the tests skip."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jwskate import Jwk, Jwt

from tests.e2e.conftest import Server
from tests.integration.live import form
from tests.partner import sent_to

pytestmark = pytest.mark.e2e

JS = Path(__file__).with_name("js")
SCRIPTS = ("package.json", "package-lock.json", "fapi.mjs")
EMAIL = "fapi-js@roasters.test"
PASSWORD = "correct horse battery staple"
REDIRECT = "https://partner.example/fapi-js-callback"


@pytest.fixture(scope="module")
def js() -> tuple[str, Path]:
    """node, and a folder outside the work tree holding the scripts with oauth4webapi
    installed as the lock file pins it (kept between runs: keyed by the files' digest)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the oauth4webapi tests")
    files = {name: (JS / name).read_bytes() for name in SCRIPTS}
    digest = hashlib.sha256(b"".join(files[name] for name in SCRIPTS)).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"tokensmith-e2e-js-{digest}"
    if not (folder / "node_modules" / "oauth4webapi").is_dir():
        folder.mkdir(exist_ok=True)
        for name, content in files.items():
            (folder / name).write_bytes(content)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    return node, folder


def _user(server: Server) -> None:
    server.merchant_admin("FAPI JS Roasters", EMAIL, PASSWORD)


@pytest.fixture(scope="module")
def config(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A partner app that must push its requests and bind its tokens, registered with
    the public half of an ES256 key; the JSON file the script reads."""
    _user(server)
    key = Jwk.generate(alg="ES256", kid="js-1")
    jwks = json.dumps({"keys": [key.public_jwk().to_dict()]})
    client = server.cli(
        "clients",
        "create",
        "--name",
        "FAPI JS app",
        "--scope",
        "read write",
        "--grant-type",
        "client_credentials",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        REDIRECT,
        "--jwks",
        jwks,
        "--require-par",
        "--require-dpop",
    )
    path = tmp_path_factory.mktemp("js") / "config.json"
    path.write_text(
        json.dumps(
            {
                "issuer": server.base_url,
                "client_id": client["client_id"],
                "kid": "js-1",
                "client_jwk": key.to_dict(),
                "dpop_jwk": Jwk.generate(alg="ES256").to_dict(),
                "redirect_uri": REDIRECT,
                "scope": "read write",
            }
        )
    )
    return path


def run(js: tuple[str, Path], *args: str) -> dict[str, Any]:
    node, folder = js
    done = subprocess.run(
        [node, str(folder / "fapi.mjs"), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out: dict[str, Any] = json.loads(done.stdout.splitlines()[-1]) if done.stdout else {}
    assert done.returncode == 0, (out, done.stderr[-2000:])
    return out


@pytest.fixture
def browser(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as b:
        yield b


def approve(browser: httpx.Client, url: str) -> str:
    """Log in and allow, as a person would; return where the browser lands."""
    r = browser.get(url)
    if r.status_code == 200 and 'action="/login"' in r.text:
        login = form(r.text, "/login")["fields"] | {"email": EMAIL, "password": PASSWORD}
        onward = sent_to(browser.post("/login", data=login))
        assert onward is not None
        r = browser.get(onward)
    assert 'action="/oauth/authorize/decision"' in r.text, r.text[:500]
    fields = form(r.text, "/oauth/authorize/decision")["fields"]
    fields.pop("remember", None)
    landing = sent_to(
        browser.post("/oauth/authorize/decision", data=fields | {"decision": "allow"})
    )
    assert landing is not None
    return landing


def thumbprint(config: Path) -> str:
    return Jwk(json.loads(config.read_text())["dpop_jwk"]).thumbprint()


def test_client_credentials_with_private_key_jwt_and_dpop(
    server: Server, js: tuple[str, Path], config: Path
) -> None:
    out = run(js, "cc", str(config))
    assert out["metadata"]["dpop_signing_alg_values_supported"]
    assert "private_key_jwt" in out["metadata"]["token_endpoint_auth_methods_supported"]
    tokens = out["tokens"]
    server.secrets_seen.append(tokens["access_token"])
    assert tokens["token_type"].lower() == "dpop" and tokens["scope"] == "read write"
    seen = out["introspection"]
    assert seen["active"] is True and seen["token_type"] == "DPoP"
    assert seen["cnf"] == {"jkt": thumbprint(config)}
    assert out["after_revocation"] == {"active": False}


def test_pushed_authorization_then_bound_code_and_rotated_refresh(
    server: Server, js: tuple[str, Path], config: Path, browser: httpx.Client
) -> None:
    pushed = run(js, "par", str(config))
    assert pushed["pushed"]["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    landing = approve(browser, pushed["authorization_url"])
    out = run(js, "code", str(config), landing)  # state and iss checked by the library
    first, second = out["tokens"], out["refreshed"]
    server.secrets_seen.extend([first["access_token"], first["refresh_token"]])
    server.secrets_seen.extend([second["access_token"], second["refresh_token"]])
    assert first["token_type"].lower() == "dpop" and second["token_type"].lower() == "dpop"
    assert second["refresh_token"] != first["refresh_token"]  # rotated
    # both access tokens are bound to the key the script holds (RFC 9449 §6.1)
    for token in (first["access_token"], second["access_token"]):
        assert Jwt(token).claims["cnf"] == {"jkt": thumbprint(config)}
