"""The commands record their changes as audit events by the actor ``cli`` (one asserted
per command, with no secret in any stored row), and ``tokensmith audit list``/``export``
read them back."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tokensmith.cli import main

PASSWORD = "correct horse battery staple"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def cli(db: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TOKENSMITH_DATABASE_URL", f"sqlite:///{db}")
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


def _rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM audit_events")]


def test_each_command_records_its_event_by_the_cli(cli, db: Path) -> None:
    secrets: list[str] = [PASSWORD]
    expected: list[tuple[str, str | None, str | None]] = []  # (type, merchant, subject)
    mid = _json(cli("merchants", "create", "--name", "Acme", "--json"))["merchant_id"]
    expected.append(("merchant.created", mid, mid))
    user = _json(
        cli("users", "create", "--merchant", "Acme", "--email", "a@acme.test",
            "--password-stdin", "--json", stdin=PASSWORD + "\n")
    )  # fmt: skip
    expected.append(("user.created", mid, user["user_id"]))
    made = _json(cli("clients", "create", "--name", "ERP", "--merchant", "Acme", "--json"))
    cid = made["client_id"]
    secrets.append(made["client_secret"])
    expected.append(("client.created", mid, cid))
    cli("clients", "update", cid, "--name", "ERP 2", "--json")
    expected.append(("client.updated", mid, cid))
    secrets.append(_json(cli("clients", "rotate-secret", cid, "--json"))["client_secret"])
    expected.append(("client.secret_rotated", mid, cid))
    cli("clients", "revoke", cid, "--json")
    expected.append(("client.revoked", mid, cid))
    cli("clients", "delete", cid, "--yes")
    expected.append(("client.deleted", mid, cid))
    key = _json(cli("apikeys", "create", "--name", "Mobile", "--merchant", "Acme", "--json"))
    secrets.append(key["apikey"])
    expected.append(("apikey.created", mid, key["key_id"]))
    secrets.append(_json(cli("apikeys", "rotate", key["key_id"], "--json"))["apikey"])
    expected.append(("apikey.rotated", mid, key["key_id"]))
    cli("apikeys", "revoke", key["key_id"], "--json")
    expected.append(("apikey.revoked", mid, key["key_id"]))
    kid = _json(cli("keys", "rotate", "--json"))["kid"]
    expected.append(("key.rotated", None, kid))
    cli("users", "disable", "a@acme.test", "--json")
    expected.append(("user.disabled", mid, user["user_id"]))
    cli("merchants", "disable", "Acme", "--json")
    expected.append(("merchant.disabled", mid, mid))

    rows = _rows(db)
    got = sorted((r["type"], r["merchant_id"], r["subject"]) for r in rows)
    assert got == sorted(expected)
    assert {(r["actor"], r["outcome"], r["source"]) for r in rows} == {("cli", "success", None)}
    for secret in secrets:
        assert all(secret not in repr(r) for r in rows), secret
    changed = next(r for r in rows if r["type"] == "client.updated")
    assert json.loads(changed["details"]) == {"fields": "name"}


def _some_events(cli) -> str:
    mid = _json(cli("merchants", "create", "--name", "Acme", "--json"))["merchant_id"]
    cli("merchants", "create", "--name", "Globex")
    cli("apikeys", "create", "--name", "=cmd|' /C calc'!A0", "--merchant", "Acme")
    return str(mid)


def test_audit_list_filters_and_prints_json(cli) -> None:
    mid = _some_events(cli)
    every = _json(cli("audit", "list", "--json"))
    assert [e["type"] for e in every] == ["apikey.created", "merchant.created", "merchant.created"]
    mine = _json(cli("audit", "list", "--merchant", "Acme", "--json"))
    assert {e["merchant_id"] for e in mine} == {mid} and len(mine) == 2
    assert [e["type"] for e in _json(cli("audit", "list", "--type", "apikey", "--json"))] == [
        "apikey.created"
    ]
    assert _json(cli("audit", "list", "--actor", "user:u_x", "--json")) == []
    assert len(_json(cli("audit", "list", "--since", "1h", "--limit", "1", "--json"))) == 1
    assert _json(cli("audit", "list", "--since", "2100-01-01", "--json")) == []
    assert len(_json(cli("audit", "list", "--until", "2100-01-01T00:00:00Z", "--json"))) == 3
    text = cli("audit", "list").output
    assert "apikey.created" in text and "cli" in text
    bad = cli("audit", "list", "--since", "yesterday", ok=False)
    assert bad.exit_code == 2 and "ISO 8601" in bad.output


def test_audit_export_writes_csv_and_json_lines(cli) -> None:
    _some_events(cli)
    out = cli("audit", "export", "--format", "csv").output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["type"] for r in rows] == ["apikey.created", "merchant.created", "merchant.created"]
    assert rows[0]["at"].endswith("Z")
    assert json.loads(rows[0]["details"])["name"].startswith("=cmd")  # inside JSON: inert
    lines = cli("audit", "export", "--format", "jsonl", "--type", "merchant").output.splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["merchant.created"] * 2
