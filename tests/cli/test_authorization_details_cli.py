"""``tokensmith authorization-details types list|add|remove`` and a client's
``--authorization-details-type`` (RFC 9396 §10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tokensmith.cli import main

SCHEMA = {"type": "object", "required": ["type", "actions"]}


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TOKENSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TOKENSMITH_SECRET_KEY", "cli-test-secret-Nf3Qk8Wd1Zr6Tb9Hv2Lm5Xc7Js4Gp0Ye")
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def test_types_are_listed_added_and_removed(cli: Any, tmp_path: Path) -> None:
    listed = cli("authorization-details", "types", "list")
    assert listed.exit_code == 0, listed.output
    assert "payment_initiation   built-in" in listed.output
    schema = tmp_path / "loyalty.json"
    schema.write_text(json.dumps(SCHEMA))
    added = cli("authorization-details", "types", "add", "loyalty_points", "--schema", str(schema))
    assert added.exit_code == 0 and "restart the servers" in added.output, added.output
    data = json.loads(cli("authorization-details", "types", "list", "--json").output)
    assert {d["type"]: d["source"] for d in data}["loyalty_points"] == "registered"
    assert next(d for d in data if d["type"] == "loyalty_points")["schema"] == SCHEMA
    gone = cli("authorization-details", "types", "remove", "loyalty_points")
    assert gone.exit_code == 0 and "removed loyalty_points" in gone.output


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("payment_initiation", "{}", "is built in"),
        ("with space", "{}", "not a valid type name"),
        ("x", "{", "not JSON"),
        ("x", '{"type": 5}', "not a valid JSON Schema"),
    ],
)
def test_a_bad_type_is_refused_in_one_line(
    cli: Any, tmp_path: Path, name: str, content: str, says: str
) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(content)
    r = cli("authorization-details", "types", "add", name, "--schema", str(schema))
    assert r.exit_code != 0 and says in r.output and "Traceback" not in r.output


def test_removing_an_unknown_type_fails(cli: Any) -> None:
    r = cli("authorization-details", "types", "remove", "nope")
    assert r.exit_code != 0 and "no registered type 'nope'" in r.output


def test_a_client_may_be_held_to_some_types(cli: Any) -> None:
    made = cli(
        "clients", "create", "--name", "psp", "--json",
        "--authorization-details-type", "payment_initiation",
    )  # fmt: skip
    data = json.loads(made.output)
    assert data["authorization_details_types"] == ["payment_initiation"]
    cid = data["client_id"]
    none = cli("clients", "update", cid, "--authorization-details-type", "none", "--json")
    assert json.loads(none.output)["authorization_details_types"] == []
    every = json.loads(cli("clients", "create", "--name", "any", "--json").output)
    assert every["authorization_details_types"] is None
