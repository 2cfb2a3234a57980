"""``tokensmith resources``: registering the APIs tokens may be restricted to (RFC 8707)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tokensmith.cli import main

API = "https://payments.example/api"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TOKENSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TOKENSMITH_SECRET_KEY", "cli-test-secret-Nf3Qk8Wd1Zr6Tb9Hv2Lm5Xc7Js4Gp0Ye")
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def test_an_api_is_added_listed_and_removed(cli: Any) -> None:
    made = cli(
        *("resources", "add", API, "--name", "Payments API", "--scope", "payments"),
        *("--scope", "refunds", "--ttl", "300", "--token-format", "opaque", "--json"),
    )
    assert made.exit_code == 0, made.output
    data = json.loads(made.output)
    assert data["scopes"] == ["payments", "refunds"] and data["access_token_ttl"] == 300
    assert data["token_format"] == "opaque"
    listed = cli("resources", "list")
    assert API in listed.output and "Payments API" in listed.output
    assert cli("resources", "remove", API).exit_code == 0
    assert json.loads(cli("resources", "list", "--json").output) == []


@pytest.mark.parametrize(
    "args",
    [
        ("relative/api", "--name", "x", "--scope", "read"),
        (API + "#frag", "--name", "x", "--scope", "read"),
        (API, "--name", "x", "--scope", "read", "--ttl", "0"),
        (API, "--name", " ", "--scope", "read"),
    ],
    ids=["relative", "fragment", "ttl", "name"],
)
def test_a_bad_api_is_refused_with_a_message(cli: Any, args: tuple[str, ...]) -> None:
    r = cli("resources", "add", *args)
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert json.loads(cli("resources", "list", "--json").output) == []


def test_an_api_is_registered_once_and_removing_an_unknown_one_fails(cli: Any) -> None:
    assert cli("resources", "add", API, "--name", "a", "--scope", "read").exit_code == 0
    again = cli("resources", "add", API, "--name", "b", "--scope", "read")
    assert again.exit_code != 0 and "already registered" in again.output
    assert cli("resources", "remove", "https://unknown.example/").exit_code != 0
