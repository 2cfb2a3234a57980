"""Seed 000 (tpay ``POST /oauth/auth``) and seed 001 (TBC ``POST /v2/tpay/access-token``)
against a real server, with curl and requests as the independent clients."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import jwt
import pytest
import requests

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

TBC = "/v2/tpay/access-token"
PROBLEM_KEYS = {"type", "title", "status", "detail", "systemCode", "code"}


@pytest.fixture(scope="module")
def made(server: Server) -> dict[str, Any]:
    """A merchant's Open API key (read scope, as the Merchant Panel makes them), a developer
    app key, and a second app key that is revoked."""
    client, app, doomed = server.cli_parallel(
        ["clients", "create", "--name", "tpay merchant", "--scope", "read"],
        ["apikeys", "create", "--name", "developer app"],
        ["apikeys", "create", "--name", "short-lived app"],
    )
    server.cli("apikeys", "revoke", doomed["key_id"])
    server.secrets_seen.extend([client["client_secret"], app["apikey"], doomed["apikey"]])
    return {
        "merchant": (client["client_id"], client["client_secret"]),
        "apikey": app["apikey"],
        "revoked_apikey": doomed["apikey"],
    }


@pytest.fixture(scope="module")
def merchant(made: dict[str, Any]) -> tuple[str, str]:
    creds: tuple[str, str] = made["merchant"]
    return creds


@pytest.fixture(scope="module")
def apikey(made: dict[str, Any]) -> str:
    return str(made["apikey"])


# -- seed 000: tpay ----------------------------------------------------------------------


def test_tpay_form_credentials_without_grant_type_issue_the_documented_fields(
    server: Server, merchant: tuple[str, str]
) -> None:
    client_id, secret = merchant
    before = int(time.time())
    done = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            server.base_url + "/oauth/auth",
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "--data-urlencode",
            f"client_id={client_id}",
            "--data-urlencode",
            f"client_secret={secret}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body = json.loads(done.stdout)
    server.secrets_seen.append(body["access_token"])
    assert list(body) == ["issued_at", "scope", "token_type", "expires_in", "access_token"]
    assert isinstance(body["issued_at"], int) and before - 1 <= body["issued_at"] <= time.time() + 1
    assert body["scope"] == "read"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 7200 and isinstance(body["expires_in"], int)
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 43


def test_tpay_token_is_reused_until_expiry_and_introspects_active(
    server: Server, merchant: tuple[str, str]
) -> None:
    client_id, secret = merchant
    form = {"client_id": client_id, "client_secret": secret}
    first = requests.post(server.base_url + "/oauth/auth", data=form, timeout=10).json()
    r = requests.post(
        server.base_url + "/oauth/introspect",
        data={"token": first["access_token"]},
        auth=merchant,
        timeout=10,
    )
    info = r.json()
    assert info["active"] is True and info["scope"] == "read"
    assert info["exp"] - info["iat"] == 7200


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_secret": "x"}, 400, "invalid_request"),
        ({"client_id": "nobody", "client_secret": "x"}, 401, "invalid_client"),
        (
            {"grant_type": "password", "client_id": "a", "client_secret": "b"},
            400,
            "unsupported_grant_type",
        ),
    ],
    ids=["no-client-id", "unknown-client", "other-grant"],
)
def test_tpay_errors_are_rfc6749_json(
    server: Server, form: dict[str, str], status: int, error: str
) -> None:
    r = requests.post(server.base_url + "/oauth/auth", data=form, timeout=10)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == error


def test_tpay_wrong_secret_is_invalid_client(server: Server, merchant: tuple[str, str]) -> None:
    form = {"client_id": merchant[0], "client_secret": merchant[1][::-1]}
    r = requests.post(server.base_url + "/oauth/auth", data=form, timeout=10)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")


# -- seed 001: TBC -----------------------------------------------------------------------


def test_tbc_apikey_and_form_credentials_issue_a_day_long_jwt(
    server: Server, merchant: tuple[str, str], apikey: str
) -> None:
    client_id, secret = merchant
    r = requests.post(
        server.base_url + TBC,
        headers={"apikey": apikey},
        data={"client_id": client_id, "client_secret": secret},
        timeout=10,
    )
    assert r.status_code == 200
    body = r.json()
    server.secrets_seen.append(body["access_token"])
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["expires_in"] == 86400 and body["token_type"] == "Bearer"
    jwks = jwt.PyJWKClient(server.base_url + "/.well-known/jwks.json")
    key = jwks.get_signing_key_from_jwt(body["access_token"])
    claims = jwt.decode(
        body["access_token"],
        key.key,
        algorithms=[key.algorithm_name],
        audience=server.base_url,
        issuer=server.base_url,
    )
    assert claims["client_id"] == client_id and claims["exp"] - claims["iat"] == 86400


def assert_problem(r: requests.Response, status: int, system_code: str) -> dict[str, str]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, str] = r.json()
    assert set(body) == PROBLEM_KEYS
    assert body["type"] == f"https://developers.tbcbank.ge/docs/error-type-{status}"
    assert body["status"] == str(status) and body["systemCode"] == system_code
    return body


@pytest.mark.parametrize(
    "form",
    [
        {"client_id": "nobody", "client_secret": "x"},
        "wrong-secret",
    ],
    ids=["unknown-merchant", "wrong-secret"],
)
def test_tbc_wrong_merchant_credentials_are_400_problem_json(
    server: Server, merchant: tuple[str, str], apikey: str, form: dict[str, str] | str
) -> None:
    data = form if isinstance(form, dict) else {"client_id": merchant[0], "client_secret": "bad"}
    r = requests.post(server.base_url + TBC, headers={"apikey": apikey}, data=data, timeout=10)
    body = assert_problem(r, 400, "tpay-access-token.400.001")
    assert body["code"] == "invalid_client" and body["title"] == "Bad Request"


@pytest.mark.parametrize(
    "headers", [{}, {"apikey": "not-a-key"}, {"apikey": ""}], ids=["missing", "wrong", "empty"]
)
def test_tbc_missing_or_wrong_apikey_is_401_problem_json(
    server: Server, merchant: tuple[str, str], headers: dict[str, str]
) -> None:
    data = {"client_id": merchant[0], "client_secret": merchant[1]}
    r = requests.post(server.base_url + TBC, headers=headers, data=data, timeout=10)
    assert_problem(r, 401, "tpay-access-token.401.001")


def test_tbc_revoked_apikey_is_refused(
    server: Server, merchant: tuple[str, str], made: dict[str, Any]
) -> None:
    form = {"client_id": merchant[0], "client_secret": merchant[1]}
    r = requests.post(
        server.base_url + TBC, headers={"apikey": made["revoked_apikey"]}, data=form, timeout=10
    )
    assert_problem(r, 401, "tpay-access-token.401.001")
