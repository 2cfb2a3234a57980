"""``tokensmith registration token create|list|revoke``: initial access tokens (RFC 7591
§3) shown once and stored as a hash, naming a merchant when asked."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tokensmith.cli import main
from tokensmith.core.credentials import hash_secret


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def cli(db: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TOKENSMITH_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("TOKENSMITH_SECRET_KEY", "cli-test-secret-Nf3Qk8Wd1Zr6Tb9Hv2Lm5Xc7Js4Gp0Ye")
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def test_a_token_is_shown_once_and_stored_only_as_its_hash(cli: Any, db: Path) -> None:
    made = cli("registration", "token", "create", "--expires-in", "3600", "--json")
    assert made.exit_code == 0, made.output
    data = json.loads(made.output)
    plain = data["initial_access_token"]
    assert data["status"] == "active" and data["expires_at"]
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT token_hash FROM initial_access_tokens").fetchall()
    assert stored == [(hash_secret(plain),)]
    listed = cli("registration", "token", "list")
    assert data["token_id"] in listed.output and plain not in listed.output


def test_a_token_names_the_merchant_its_clients_belong_to(cli: Any) -> None:
    merchant = json.loads(cli("merchants", "create", "--name", "Shop", "--json").output)
    made = cli("registration", "token", "create", "--merchant", "Shop", "--json")
    assert json.loads(made.output)["merchant_id"] == merchant["merchant_id"]


def test_a_revoked_token_is_listed_as_revoked(cli: Any) -> None:
    token_id = json.loads(cli("registration", "token", "create", "--json").output)["token_id"]
    assert cli("registration", "token", "revoke", token_id).exit_code == 0
    listed = json.loads(cli("registration", "token", "list", "--json").output)
    assert listed[0]["status"] == "revoked"
    again = CliRunner().invoke(main, ["registration", "token", "revoke", token_id])
    assert again.exit_code != 0 and "no live token" in again.output


@pytest.mark.parametrize("args", [["--expires-in", "0"], ["--merchant", "nobody"]])
def test_bad_options_are_refused_with_one_line(cli: Any, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["registration", "token", "create", *args])
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_a_client_made_in_the_cli_is_not_registered(cli: Any) -> None:
    made = json.loads(cli("clients", "create", "--name", "cli", "--json").output)
    assert made["registered"] is False
