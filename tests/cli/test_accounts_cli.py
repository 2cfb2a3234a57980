"""``tokensmith merchants``, ``users`` and ``purge``: JSON output is a contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tokensmith.cli import main

PASSWORD = "correct horse battery staple"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TOKENSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TOKENSMITH_SECRET_KEY", "cli-test-secret-Nf3Qk8Wd1Zr6Tb9Hv2Lm5Xc7Js4Gp0Ye")
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> Any:
        result = runner.invoke(main, list(args), input=stdin, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def _json(result: Any) -> Any:
    return json.loads(result.output)


def test_merchant_create_list_disable(cli) -> None:
    created = _json(cli("merchants", "create", "--name", "Acme", "--json"))
    assert created["merchant_id"].startswith("m_") and created["status"] == "active"
    assert [m["name"] for m in _json(cli("merchants", "list", "--json"))] == ["Acme"]
    disabled = _json(cli("merchants", "disable", "Acme", "--json"))
    assert disabled["status"] == "disabled" and disabled["disabled_at"]
    again = cli("merchants", "create", "--name", "Acme", ok=False)
    assert again.exit_code == 2 and "exists" in again.output


def test_user_create_by_merchant_name_reads_the_password_from_stdin(cli, tmp_path: Path) -> None:
    mid = _json(cli("merchants", "create", "--name", "Acme", "--json"))["merchant_id"]
    user = _json(
        cli(
            "users",
            "create",
            "--merchant",
            "Acme",
            "--email",
            "Ann@Acme.test",
            "--password-stdin",
            "--role",
            "admin",
            "--json",
            stdin=PASSWORD + "\n",
        )
    )
    assert (
        user["email"] == "ann@acme.test" and user["merchant_id"] == mid and user["role"] == "admin"
    )
    assert "password" not in json.dumps(user)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cli.db*"))
    assert PASSWORD.encode() not in stored and b"$argon2id$" in stored


def test_operator_needs_no_merchant(cli) -> None:
    op = _json(
        cli(
            "users",
            "create",
            "--email",
            "op@ts.test",
            "--password-stdin",
            "--role",
            "operator",
            "--json",
            stdin=PASSWORD,
        )
    )
    assert op["merchant_id"] is None and op["role"] == "operator"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--merchant", "Acme", "--email", "x@acme.test"], "short\n", "at least"),
        (["--merchant", "Nope", "--email", "x@acme.test"], PASSWORD, "no merchant"),
        (["--email", "x@acme.test"], PASSWORD, "needs --merchant"),
        (["--merchant", "Acme", "--email", "not-an-email"], PASSWORD, "e-mail"),
        (["--merchant", "Acme", "--email", "x@acme.test"], "", "standard input"),
    ],
    ids=["short-password", "unknown-merchant", "no-merchant", "bad-email", "no-stdin"],
)
def test_user_create_refuses(cli, args: list[str], stdin: str, message: str) -> None:
    cli("merchants", "create", "--name", "Acme")
    result = cli("users", "create", *args, "--password-stdin", stdin=stdin, ok=False)
    assert result.exit_code == 2 and message in result.output


def test_users_list_and_disable(cli) -> None:
    cli("merchants", "create", "--name", "Acme")
    cli("merchants", "create", "--name", "Other")
    cli(
        "users",
        "create",
        "--merchant",
        "Acme",
        "--email",
        "a@acme.test",
        "--password-stdin",
        stdin=PASSWORD,
    )
    cli(
        "users",
        "create",
        "--merchant",
        "Other",
        "--email",
        "b@other.test",
        "--password-stdin",
        stdin=PASSWORD,
    )
    assert [u["email"] for u in _json(cli("users", "list", "--merchant", "Acme", "--json"))] == [
        "a@acme.test"
    ]
    assert len(_json(cli("users", "list", "--json"))) == 2
    assert _json(cli("users", "disable", "A@acme.test", "--json"))["status"] == "disabled"
    assert "disabled" in cli("users", "list").output


def test_purge_prints_counts(cli) -> None:
    counts = _json(cli("purge", "--json"))
    assert counts == {
        "access_tokens": 0,
        "refresh_tokens": 0,
        "authorization_codes": 0,
        "sessions": 0,
        "pushed_requests": 0,
        "audit_events": 0,
        "consents": 0,
    }
    assert "refresh_tokens: 0" in cli("purge").output
