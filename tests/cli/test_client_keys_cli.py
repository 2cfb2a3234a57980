"""``tokensmith clients create --jwks/--jwks-uri``: a client that authenticates with
private_key_jwt (RFC 7523), registered with public keys only, shown by ``clients show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.assertions import ClientKey
from tokensmith.cli import main

KEY = ClientKey.generate("ES256", kid="k1")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TOKENSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TOKENSMITH_SECRET_KEY", "cli-test-secret-Nf3Qk8Wd1Zr6Tb9Hv2Lm5Xc7Js4Gp0Ye")
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def test_a_client_with_inline_keys_gets_no_secret(cli: Any, tmp_path: Path) -> None:
    made = cli("clients", "create", "--name", "bank", "--jwks", KEY.jwks(), "--json")
    assert made.exit_code == 0, made.output
    data = json.loads(made.output)
    assert data["client_secret"] is None
    assert data["token_endpoint_auth_methods"] == ["private_key_jwt"]
    shown = json.loads(cli("clients", "show", data["client_id"], "--json").output)
    assert shown["jwks"] == {"keys": [KEY.public_jwk]} and shown["jwks_uri"] is None
    assert (
        "client_secret:" not in cli("clients", "create", "--name", "b", "--jwks", KEY.jwks()).output
    )


def test_keys_may_come_from_a_file(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(KEY.jwks())
    made = cli("clients", "create", "--name", "bank", "--jwks", str(path), "--json")
    assert json.loads(made.output)["jwks"]["keys"][0]["kid"] == "k1"


def test_a_jwks_uri_client(cli: Any) -> None:
    uri = "https://bank.example/jwks.json"
    data = json.loads(cli("clients", "create", "--name", "b", "--jwks-uri", uri, "--json").output)
    assert data["jwks_uri"] == uri and data["client_secret"] is None


def test_a_keyed_client_has_no_secret_to_rotate(cli: Any) -> None:
    made = json.loads(
        cli("clients", "create", "--name", "b", "--jwks", KEY.jwks(), "--json").output
    )
    result = cli("clients", "rotate-secret", made["client_id"])
    assert result.exit_code == 2 and "private_key_jwt" in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--jwks", json.dumps({"keys": [KEY.key.private_jwk()]})), "private key"),
        (("--jwks", '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'), "private key"),
        (("--jwks", '{"keys": "x"}'), "keys"),
        (("--jwks", "no-such-file.json"), "cannot read"),
        (("--jwks-uri", "http://bank.example/jwks"), "https"),
        (("--jwks", KEY.jwks(), "--jwks-uri", "https://bank.example/j"), "not both"),
        (("--jwks", KEY.jwks(), "--basic-only"), "not public"),
    ],
)
def test_bad_keys_are_refused(cli: Any, args: tuple[str, ...], words: str) -> None:
    result = cli("clients", "create", "--name", "x", *args)
    assert result.exit_code == 2 and words in result.output, result.output


NEW = ClientKey.generate("ES256", kid="k2")


def _made(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("clients", "create", "--name", "b", *args, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_update_replaces_the_keys_of_a_keyed_client(cli: Any, tmp_path: Path) -> None:
    made = _made(cli, "--jwks", KEY.jwks())
    path = tmp_path / "new.json"
    path.write_text(NEW.jwks())
    result = cli("clients", "update", made["client_id"], "--jwks", str(path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["jwks"] == {"keys": [NEW.public_jwk]}
    assert data["token_endpoint_auth_methods"] == ["private_key_jwt"]
    uri = "https://bank.example/v2/jwks.json"
    data = json.loads(
        cli("clients", "update", made["client_id"], "--jwks-uri", uri, "--json").output
    )
    assert data["jwks_uri"] == uri and data["jwks"] is None


def test_a_secret_client_gets_keys_keeps_its_secret_and_may_clear_them(cli: Any) -> None:
    made = _made(cli)
    cid = made["client_id"]
    data = json.loads(
        cli("clients", "update", cid, "--jwks", KEY.jwks(), "--name", "renamed", "--json").output
    )
    assert data["name"] == "renamed" and data["jwks"] == {"keys": [KEY.public_jwk]}
    assert data["token_endpoint_auth_methods"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    data = json.loads(cli("clients", "update", cid, "--clear-keys", "--json").output)
    assert data["jwks"] is None and "private_key_jwt" not in data["token_endpoint_auth_methods"]


@pytest.mark.parametrize(
    ("create", "update", "words"),
    [
        (("--jwks", KEY.jwks()), ("--clear-keys",), "only with its keys"),
        ((), ("--clear-keys", "--jwks", KEY.jwks()), "--clear-keys"),
        ((), ("--jwks", '{"keys": "x"}'), "keys"),
        ((), ("--jwks-uri", "https://10.0.0.1/jwks"), "not a public address"),
        ((), ("--jwks-uri", "https://169.254.169.254/jwks"), "metadata"),
        ((), ("--jwks", KEY.jwks(), "--jwks-uri", "https://bank.example/j"), "not both"),
    ],
    ids=["clear keyed-only", "clear and set", "bad set", "private uri", "metadata", "both"],
)
def test_bad_key_updates_are_refused(
    cli: Any, create: tuple[str, ...], update: tuple[str, ...], words: str
) -> None:
    made = _made(cli, *create)
    result = cli("clients", "update", made["client_id"], *update)
    assert result.exit_code == 2 and words in result.output, result.output
    shown = json.loads(cli("clients", "show", made["client_id"], "--json").output)
    assert shown["jwks"] == made["jwks"] and shown["jwks_uri"] == made["jwks_uri"]


def test_loopback_uris_only_for_a_server_on_loopback(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an issuer the server is the development one on 127.0.0.1: it may fetch
    from loopback. A public issuer may not."""
    made = _made(cli)
    uri = "http://127.0.0.1:9/jwks"
    assert cli("clients", "update", made["client_id"], "--jwks-uri", uri).exit_code == 0
    monkeypatch.setenv("TOKENSMITH_ISSUER", "https://auth.example.ge")
    result = cli("clients", "update", made["client_id"], "--jwks-uri", "http://127.0.0.1:8/j")
    assert result.exit_code == 2 and "https" in result.output


def test_a_client_secret_jwt_client_gets_a_long_secret_rotated_and_sealed(cli: Any) -> None:
    made = _made(cli, "--auth-method", "client_secret_jwt")
    assert made["token_endpoint_auth_methods"] == ["client_secret_jwt"]
    assert len(made["client_secret"]) == 86
    rotated = cli("clients", "rotate-secret", made["client_id"], "--json")
    assert rotated.exit_code == 0, rotated.output
    assert len(json.loads(rotated.output)["client_secret"]) == 86
    result = cli("clients", "update", made["client_id"], "--jwks", KEY.jwks())
    assert result.exit_code == 2 and "no keys" in result.output


@pytest.mark.parametrize(
    "args", [("--jwks", KEY.jwks()), ("--basic-only",), ("--jwks-uri", "https://b.example/j")]
)
def test_client_secret_jwt_is_for_a_secret_client_only(cli: Any, args: tuple[str, ...]) -> None:
    result = cli("clients", "create", "--name", "x", "--auth-method", "client_secret_jwt", *args)
    assert result.exit_code == 2 and "client_secret_jwt" in result.output, result.output
