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
