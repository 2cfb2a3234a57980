"""``tokensmith clients create/update --profile``: a client's security profile (FAPI 2.0),
and ``update --require-par/--require-dpop``; a FAPI 2.0 client must be able to
authenticate as the profile allows (private_key_jwt, FAPI 2.0 §5.3.2.1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.assertions import ClientKey
from tokensmith.cli import main

KEY = ClientKey.generate("ES256", kid="k1")
APP = ("--grant-type", "authorization_code", "--redirect-uri", "https://bank.example/cb")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TOKENSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TOKENSMITH_SECRET_KEY", "cli-test-secret-Nf3Qk8Wd1Zr6Tb9Hv2Lm5Xc7Js4Gp0Ye")
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def made(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("clients", "create", "--name", "bank", *args, "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def test_a_keyed_client_may_follow_fapi2(cli: Any) -> None:
    data = made(cli, "--jwks", KEY.jwks(), "--profile", "fapi2", *APP)
    assert data["profile"] == "fapi2"
    shown = json.loads(cli("clients", "show", data["client_id"], "--json").output)
    assert shown["profile"] == "fapi2"


def test_a_client_follows_the_servers_profile_unless_told(cli: Any) -> None:
    assert made(cli)["profile"] is None


@pytest.mark.parametrize("args", [(), ("--public",), ("--basic-only",)])
def test_a_client_without_private_key_jwt_cannot_follow_fapi2(cli: Any, args: tuple[str]) -> None:
    result = cli("clients", "create", "--name", "b", "--profile", "fapi2", *APP, *args)
    assert result.exit_code != 0
    assert "FAPI 2.0" in result.output and "private_key_jwt" in result.output


def test_update_sets_and_clears_the_profile(cli: Any) -> None:
    client_id = made(cli, "--jwks", KEY.jwks(), *APP)["client_id"]
    for given, stored in (("fapi2", "fapi2"), ("default", "default"), ("inherit", None)):
        result = cli("clients", "update", client_id, "--profile", given, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["profile"] == stored


def test_update_refuses_fapi2_for_a_secret_client(cli: Any) -> None:
    client_id = made(cli, *APP)["client_id"]
    result = cli("clients", "update", client_id, "--profile", "fapi2")
    assert result.exit_code != 0 and "private_key_jwt" in result.output
    shown = json.loads(cli("clients", "show", client_id, "--json").output)
    assert shown["profile"] is None


def test_update_turns_par_and_dpop_on_and_off(cli: Any) -> None:
    client_id = made(cli, *APP)["client_id"]
    on = json.loads(
        cli("clients", "update", client_id, "--require-par", "--require-dpop", "--json").output
    )
    assert on["require_pushed_authorization_requests"] is True
    assert on["dpop_bound_access_tokens"] is True
    off = json.loads(cli("clients", "update", client_id, "--no-require-dpop", "--json").output)
    assert off["require_pushed_authorization_requests"] is True
    assert off["dpop_bound_access_tokens"] is False
