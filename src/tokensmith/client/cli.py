"""``tokensmith token``: print an access token for shell scripts.

The client secret is read from standard input (``--client-secret-stdin``) or from the
environment variable ``TOKENSMITH_CLIENT_SECRET``, never from the command line, where
other users could see it in the process list.
"""

from __future__ import annotations

import os
import sys
import time
from typing import cast

import click
import orjson

from ._base import AuthMethod
from .errors import TokenError
from .sync import TokenClient

__all__ = ["token"]


@click.command("token")
@click.option("--issuer", required=True, help="Issuer URL (base URL for --dialect tpay/tbc).")
@click.option("--client-id", required=True, envvar="TOKENSMITH_CLIENT_ID")
@click.option(
    "--client-secret-stdin",
    is_flag=True,
    help="Read the client secret from the first line of standard input.",
)
@click.option("--scope", multiple=True, help="Scope to request (repeatable or space-separated).")
@click.option(
    "--dialect",
    type=click.Choice(["oauth", "tpay", "tbc"]),
    default="oauth",
    show_default=True,
    help="oauth: RFC 8414 discovery from --issuer; tpay / tbc: vendor endpoints.",
)
@click.option("--apikey", envvar="TOKENSMITH_APIKEY", help="TBC apikey header (--dialect tbc).")
@click.option("--token-url", help="Skip discovery and use this token endpoint (oauth).")
@click.option(
    "--auth-method",
    type=click.Choice(["client_secret_basic", "client_secret_post"]),
    default=None,
    help="Client authentication (default: from discovery, else client_secret_basic).",
)
@click.option("--timeout", type=float, default=10.0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the token response as JSON.")
def token(
    issuer: str,
    client_id: str,
    client_secret_stdin: bool,
    scope: tuple[str, ...],
    dialect: str,
    apikey: str | None,
    token_url: str | None,
    auth_method: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Obtain an access token (client_credentials, RFC 6749 §4.4) and print it."""
    secret = _read_secret(client_secret_stdin)
    scopes = " ".join(scope) or None
    try:
        client = _make_client(
            issuer, client_id, secret, scopes, dialect, apikey, token_url, auth_method, timeout
        )
        with client:
            tok = client.get_token()
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        out = {
            "access_token": tok.access_token,
            "token_type": tok.token_type,
            "expires_in": max(0, int(tok.expires_at - time.time())),
            "expires_at": int(tok.expires_at),
            "scope": tok.scope,
        }
        click.echo(orjson.dumps(out).decode())
    else:
        click.echo(tok.access_token)


def _read_secret(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("--client-secret-stdin: standard input is empty")
        return line
    env = os.environ.get("TOKENSMITH_CLIENT_SECRET")
    if env:
        return env
    raise click.UsageError("give the secret with --client-secret-stdin or TOKENSMITH_CLIENT_SECRET")


def _make_client(
    issuer: str,
    client_id: str,
    secret: str,
    scope: str | None,
    dialect: str,
    apikey: str | None,
    token_url: str | None,
    auth_method: str | None,
    timeout: float,
) -> TokenClient:
    if dialect == "tpay":
        return TokenClient.tpay(client_id, secret, base_url=issuer, scope=scope, timeout=timeout)
    if dialect == "tbc":
        if not apikey:
            raise click.UsageError("--dialect tbc needs --apikey (or TOKENSMITH_APIKEY)")
        return TokenClient.tbc(apikey, client_id, secret, base_url=issuer, timeout=timeout)
    method = cast("AuthMethod | None", auth_method)
    if token_url:
        return TokenClient(
            token_url,
            client_id,
            secret,
            scope,
            auth_method=method or "client_secret_basic",
            timeout=timeout,
        )
    return TokenClient.from_issuer(
        issuer, client_id, secret, scope, auth_method=method, timeout=timeout
    )
