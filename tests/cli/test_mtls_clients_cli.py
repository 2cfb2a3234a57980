"""``tokensmith clients create/update --auth-method tls_client_auth|self_signed_tls_client_auth``
with one ``--tls-*`` subject and ``--cert-bound-tokens`` (RFC 8705), shown by ``clients
show`` with their RFC 8705 metadata names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.certs import make_client_cert
from tokensmith.cli import main

DN = "CN=bank-client,O=Example Bank,C=GE"
SELF = make_client_cert(None, "self-signed")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TOKENSMITH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TOKENSMITH_SECRET_KEY", "cli-test-secret-Nf3Qk8Wd1Zr6Tb9Hv2Lm5Xc7Js4Gp0Ye")
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return run


def created(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("clients", "create", "--name", "bank", *args, "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


def test_a_pki_client_gets_no_secret_and_shows_its_subject(cli: Any) -> None:
    data = created(cli, "--auth-method", "tls_client_auth", "--tls-subject-dn", DN)
    assert data["client_secret"] is None
    assert data["token_endpoint_auth_methods"] == ["tls_client_auth"]
    assert data["tls_client_auth_subject_dn"] == DN
    assert data["tls_client_certificate_bound_access_tokens"] is False
    shown = json.loads(cli("clients", "show", data["client_id"], "--json").output)
    assert shown["tls_client_auth_subject_dn"] == DN
    result = cli("clients", "rotate-secret", data["client_id"])
    assert result.exit_code == 2 and "TLS certificate" in result.output


@pytest.mark.parametrize(
    ("flag", "value", "name", "stored"),
    [
        ("--tls-san-dns", "client.bank.example", "tls_client_auth_san_dns", "client.bank.example"),
        (
            "--tls-san-uri",
            "https://bank.example/c",
            "tls_client_auth_san_uri",
            "https://bank.example/c",
        ),
        ("--tls-san-ip", "2001:db8:0::1", "tls_client_auth_san_ip", "2001:db8::1"),
        ("--tls-san-email", "ops@bank.example", "tls_client_auth_san_email", "ops@bank.example"),
    ],
)
def test_each_san_kind_registers(cli: Any, flag: str, value: str, name: str, stored: str) -> None:
    data = created(cli, "--auth-method", "tls_client_auth", flag, value)
    assert data[name] == stored


def test_a_self_signed_client_registers_its_certificate_in_jwks(cli: Any) -> None:
    data = created(
        cli,
        "--auth-method",
        "self_signed_tls_client_auth",
        "--jwks",
        SELF.jwks(),
        "--cert-bound-tokens",
    )
    assert data["token_endpoint_auth_methods"] == ["self_signed_tls_client_auth"]
    assert data["jwks"]["keys"][0]["x5c"] == [SELF.b64_der]
    assert data["tls_client_certificate_bound_access_tokens"] is True


def test_update_changes_the_subject_and_the_binding(cli: Any) -> None:
    data = created(cli, "--auth-method", "tls_client_auth", "--tls-subject-dn", DN)
    cid = data["client_id"]
    changed = cli(
        "clients",
        "update",
        cid,
        "--tls-san-dns",
        "new.bank.example",
        "--cert-bound-tokens",
        "--json",
    )
    assert changed.exit_code == 0, changed.output
    after = json.loads(changed.output)
    assert after["tls_client_auth_san_dns"] == "new.bank.example"
    assert "tls_client_auth_subject_dn" not in after
    assert after["tls_client_certificate_bound_access_tokens"] is True
    off = json.loads(cli("clients", "update", cid, "--no-cert-bound-tokens", "--json").output)
    assert off["tls_client_certificate_bound_access_tokens"] is False
    assert off["tls_client_auth_san_dns"] == "new.bank.example"


def test_a_secret_client_may_switch_to_tls_client_auth(cli: Any) -> None:
    data = created(cli)
    switched = cli(
        "clients", "update", data["client_id"], "--auth-method", "tls_client_auth",
        "--tls-subject-dn", DN, "--json",
    )  # fmt: skip
    assert switched.exit_code == 0, switched.output
    assert json.loads(switched.output)["token_endpoint_auth_methods"] == ["tls_client_auth"]


def test_any_client_may_bind_its_tokens(cli: Any) -> None:
    assert created(cli, "--cert-bound-tokens")["tls_client_certificate_bound_access_tokens"] is True


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--auth-method", "tls_client_auth"), "exactly one of"),
        (("--auth-method", "tls_client_auth", "--tls-subject-dn", "nonsense"), "RFC 4514"),
        (("--auth-method", "tls_client_auth", "--tls-san-ip", "300.1.1.1"), "IP"),
        (
            ("--auth-method", "tls_client_auth", "--tls-san-dns", "a", "--tls-san-uri", "b"),
            "one of",
        ),
        (("--tls-subject-dn", DN), "--auth-method tls_client_auth"),
        (
            ("--auth-method", "tls_client_auth", "--tls-subject-dn", DN, "--basic-only"),
            "not public",
        ),
        (("--auth-method", "self_signed_tls_client_auth"), "--jwks"),
        (
            (
                "--auth-method",
                "self_signed_tls_client_auth",
                "--jwks",
                SELF.jwks(),
                "--tls-san-dns",
                "a",
            ),
            "no subject",
        ),
        (
            ("--auth-method", "tls_client_auth", "--tls-subject-dn", DN, "--jwks", SELF.jwks()),
            "no jwks",
        ),
    ],
)
def test_bad_registrations_are_refused(cli: Any, args: tuple[str, ...], words: str) -> None:
    result = cli("clients", "create", "--name", "x", *args)
    assert result.exit_code == 2 and words in result.output, result.output
