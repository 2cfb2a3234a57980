"""The ``tokensmith`` command: JSON output is a contract scripts rely on."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokensmith.cli import main
from tokensmith.core.credentials import hash_secret


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TOKENSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TOKENSMITH_SECRET_KEY", "cli-test-secret-Nf3Qk8Wd1Zr6Tb9Hv2Lm5Xc7Js4Gp0Ye")
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> object:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


def _json(result: object) -> dict:
    return json.loads(result.output)  # type: ignore[attr-defined]


def test_create_prints_secret_once_and_stores_only_hash(cli, tmp_path: Path) -> None:
    created = _json(cli("clients", "create", "--name", "shop", "--scope", "read write", "--json"))
    assert len(created["client_secret"]) >= 43 and len(created["client_id"]) == 13
    assert created["scopes"] == ["read", "write"]
    shown = _json(cli("clients", "show", created["client_id"], "--json"))
    assert "client_secret" not in shown and shown["status"] == "active"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cli.db*"))
    assert created["client_secret"].encode() not in stored
    assert hash_secret(created["client_secret"]).encode() in stored


def test_create_with_require_par_marks_the_client(cli) -> None:
    """RFC 9126 §6 ``require_pushed_authorization_requests``, off unless asked for."""
    partner = ["--grant-type", "authorization_code", "--redirect-uri", "https://app.example/cb"]
    made = _json(cli("clients", "create", "--name", "par", *partner, "--require-par", "--json"))
    assert made["require_pushed_authorization_requests"] is True
    shown = _json(cli("clients", "show", made["client_id"], "--json"))
    assert shown["require_pushed_authorization_requests"] is True
    plain = _json(cli("clients", "create", "--name", "plain", "--json"))
    assert plain["require_pushed_authorization_requests"] is False


def test_create_with_require_dpop_makes_a_client_that_must_use_dpop(cli) -> None:
    """RFC 9449 §5.2: shown under its metadata name, ``dpop_bound_access_tokens``."""
    plain = _json(cli("clients", "create", "--name", "shop", "--json"))
    bound = _json(cli("clients", "create", "--name", "bank", "--require-dpop", "--json"))
    assert plain["dpop_bound_access_tokens"] is False
    assert bound["dpop_bound_access_tokens"] is True
    shown = _json(cli("clients", "show", bound["client_id"], "--json"))
    assert shown["dpop_bound_access_tokens"] is True


def test_generated_basic_credentials_fit_one_base64_line(cli) -> None:
    import base64

    created = _json(cli("clients", "create", "--name", "shop", "--json"))
    raw = f"{created['client_id']}:{created['client_secret']}".encode()
    assert len(base64.b64encode(raw)) <= 76


def test_list_revoke_and_rotate(cli) -> None:
    created = _json(cli("clients", "create", "--name", "a", "--json"))
    cid = created["client_id"]
    rotated = _json(cli("clients", "rotate-secret", cid, "--keep-old-for", "60", "--json"))
    assert rotated["client_secret"] != created["client_secret"]
    assert len(rotated["secrets"]) == 2 and rotated["secrets"][0]["expires_at"] is not None
    listed = _json(cli("clients", "list", "--json"))
    assert [c["client_id"] for c in listed] == [cid]
    assert _json(cli("clients", "revoke", cid, "--json"))["status"] == "revoked"


@pytest.mark.parametrize(
    "args",
    [
        ("clients", "show", "nope"),
        ("clients", "revoke", "nope"),
        ("clients", "rotate-secret", "nope"),
        ("clients", "create", "--name", "x", "--scope", ""),
        ("clients", "create", "--name", "x", "--ttl", "0"),
        ("clients", "create", "--name", "x", "--merchant", "ghost"),
        ("clients", "create", "--name", "x", "--grant-type", "authorization_code"),
        ("apikeys", "revoke", "nope"),
    ],
)
def test_operator_mistakes_exit_2_with_a_reason(cli, args: tuple[str, ...]) -> None:
    result = cli(*args, ok=False)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "error:" in result.output  # type: ignore[attr-defined]


def test_apikeys_create_list_revoke(cli) -> None:
    created = _json(cli("apikeys", "create", "--name", "dev", "--json"))
    assert len(created["apikey"]) >= 43
    assert [k["key_id"] for k in _json(cli("apikeys", "list", "--json"))] == [created["key_id"]]
    assert "apikey" not in _json(cli("apikeys", "list", "--json"))[0]
    assert _json(cli("apikeys", "revoke", created["key_id"], "--json"))["status"] == "revoked"


def test_keys_rotate_keeps_old_published(cli) -> None:
    cli("clients", "list")  # creates the schema
    first = _json(cli("keys", "rotate", "--json"))
    second = _json(cli("keys", "rotate", "--alg", "RS256", "--json"))
    keys = {k["kid"]: k for k in _json(cli("keys", "list", "--json"))}
    assert keys[second["kid"]]["status"] == "signing" and keys[second["kid"]]["alg"] == "RS256"
    assert keys[first["kid"]]["status"] == "published"
    assert keys[first["kid"]]["publish_until"] is not None


def test_keys_rotate_with_a_delay_publishes_the_next_key_first(cli) -> None:
    cli("clients", "list")  # creates the schema
    current = _json(cli("keys", "rotate", "--json"))
    before = dt.datetime.now(dt.UTC)
    pending = _json(cli("keys", "rotate", "--activate-after", "300", "--json"))
    keys = {k["kid"]: k for k in _json(cli("keys", "list", "--json"))}
    assert keys[current["kid"]]["status"] == "signing"
    assert keys[pending["kid"]]["status"] == "next"
    signs_from = dt.datetime.fromisoformat(pending["signs_from"].replace("Z", "+00:00"))
    assert 299 <= (signs_from - before).total_seconds() <= 302
    assert keys[current["kid"]]["retired_at"] == pending["signs_from"]


def test_keys_rotate_refuses_a_negative_delay(cli) -> None:
    result = cli("keys", "rotate", "--activate-after", "-1", ok=False)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "--activate-after" in result.output  # type: ignore[attr-defined]


def test_version_prints_the_package_version(cli) -> None:
    from importlib.metadata import version

    for flag in ("-V", "--version"):
        assert cli(flag).output == f"tokensmith {version('tokensmith')}\n"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "command",
    [(), ("clients",), ("clients", "update"), ("apikeys", "rotate"), ("serve",), ("token",)],
)
def test_h_is_help_on_every_command(cli, command: tuple[str, ...]) -> None:
    short, long = cli(*command, "-h").output, cli(*command, "--help").output  # type: ignore[attr-defined]
    assert short == long and "Usage:" in short and "-h, --help" in short


def test_update_changes_only_what_is_given(cli) -> None:
    cid = _json(cli("clients", "create", "--name", "a", "--scope", "read", "--json"))["client_id"]
    changed = _json(
        cli(
            "clients", "update", cid, "--scope", "read write", "--ttl", "60",
            "--token-format", "opaque", "--json",
        )
    )  # fmt: skip
    assert changed["scopes"] == ["read", "write"] and changed["access_token_ttl"] == 60
    assert changed["token_format"] == "opaque" and changed["name"] == "a"
    assert _json(cli("clients", "show", cid, "--json")) == changed


def test_update_replaces_redirect_uris_and_grant_types(cli) -> None:
    app = [
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--redirect-uri", "https://a.example/cb", "--redirect-uri", "https://a.example/cb2",
    ]  # fmt: skip
    cid = _json(cli("clients", "create", "--name", "app", *app, "--json"))["client_id"]
    changed = _json(
        cli(
            "clients", "update", cid, "--redirect-uri", "https://b.example/cb",
            "--grant-type", "authorization_code", "--name", " renamed ", "--json",
        )
    )  # fmt: skip
    assert changed["redirect_uris"] == ["https://b.example/cb"]
    assert changed["grant_types"] == ["authorization_code"] and changed["name"] == "renamed"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("--scope", ""), "at least one scope"),
        (("--ttl", "0"), "ttl must be between"),
        (("--ttl", "999999999"), "ttl must be between"),
        (("--grant-type", "authorization_code"), "redirect URI"),
        (("--redirect-uri", "http://evil.example/cb"), "must use https"),
        (("--redirect-uri", "javascript://x/%0aalert(1)"), "javascript"),
        (("--name", "  "), "a name is required"),
        ((), "nothing to change"),
    ],
)
def test_update_is_checked_like_create(cli, change: tuple[str, ...], reason: str) -> None:
    cid = _json(cli("clients", "create", "--name", "a", "--json"))["client_id"]
    result = cli("clients", "update", cid, *change, ok=False)
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert reason in result.output  # type: ignore[attr-defined]
    assert len(result.output.strip().splitlines()) == 1  # type: ignore[attr-defined]
    assert _json(cli("clients", "show", cid, "--json"))["scopes"] == ["read"]


def test_update_refuses_a_revoked_client(cli) -> None:
    cid = _json(cli("clients", "create", "--name", "a", "--json"))["client_id"]
    cli("clients", "revoke", cid)
    result = cli("clients", "update", cid, "--name", "b", ok=False)
    assert result.exit_code == 2 and "revoked" in result.output  # type: ignore[attr-defined]


def test_delete_asks_first_and_keeps_the_client_if_not_confirmed(cli) -> None:
    cid = _json(cli("clients", "create", "--name", "a", "--json"))["client_id"]
    result = CliRunner().invoke(main, ["clients", "delete", cid], input="n\n")
    assert result.exit_code == 1 and "Delete client" in result.output
    assert _json(cli("clients", "show", cid, "--json"))["status"] == "active"
    result = CliRunner().invoke(main, ["clients", "delete", cid], input="y\n")
    assert result.exit_code == 0 and f"deleted {cid}" in result.output


def test_delete_with_yes_removes_the_client(cli) -> None:
    created = _json(cli("clients", "create", "--name", "a", "--json"))
    cid = created["client_id"]
    assert _json(cli("clients", "delete", cid, "--yes", "--json")) == {
        "client_id": cid,
        "status": "deleted",
    }
    assert cid not in [c["client_id"] for c in _json(cli("clients", "list", "--json"))]  # type: ignore[union-attr]
    assert cli("clients", "show", cid, ok=False).exit_code == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "args",
    [
        ("clients", "update", "nope", "--name", "x"),
        ("clients", "delete", "nope", "--yes"),
        ("clients", "delete", "nope"),
        ("apikeys", "rotate", "nope"),
    ],
)
def test_unknown_ids_exit_2_with_one_line(cli, args: tuple[str, ...]) -> None:
    result = cli(*args, ok=False)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert result.output.strip().splitlines() == [  # type: ignore[attr-defined]
        f"tokensmith: error: no {'live key' if args[0] == 'apikeys' else 'client'} 'nope'"
    ]


def test_apikeys_rotate_shows_a_new_value_once_and_keeps_the_id(cli, tmp_path: Path) -> None:
    created = _json(cli("apikeys", "create", "--name", "dev", "--json"))
    rotated = _json(cli("apikeys", "rotate", created["key_id"], "--json"))
    assert rotated["key_id"] == created["key_id"] and rotated["status"] == "active"
    assert rotated["apikey"] != created["apikey"] and len(rotated["apikey"]) >= 43
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cli.db*"))
    assert hash_secret(rotated["apikey"]).encode() in stored
    assert rotated["apikey"].encode() not in stored
    cli("apikeys", "revoke", created["key_id"])
    assert cli("apikeys", "rotate", created["key_id"], ok=False).exit_code == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_printed_for_each_shell(shell: str) -> None:
    """click's completion: ``_TOKENSMITH_COMPLETE={shell}_source tokensmith``."""
    env = {"_TOKENSMITH_COMPLETE": f"{shell}_source"}
    result = CliRunner().invoke(main, [], env=env, prog_name="tokensmith")
    assert result.exit_code == 0 and "_TOKENSMITH_COMPLETE" in result.output


def test_completion_offers_the_new_subcommands() -> None:
    env = {
        "_TOKENSMITH_COMPLETE": "bash_complete",
        "COMP_WORDS": "tokensmith clients ",
        "COMP_CWORD": "2",
    }
    result = CliRunner().invoke(main, [], env=env, prog_name="tokensmith")
    offered = {line.split(",", 1)[1] for line in result.output.splitlines()}
    assert {"update", "delete", "revoke", "show"} <= offered
