"""``tokensmith clients``: API keys and partner apps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from tokensmith.cli._common import Env, client_json, db_options, emit, json_option, table, with_env
from tokensmith.core.admin import (
    GRANT_TYPES,
    INHERIT,
    SPEC_AUTH_METHODS,
    AdminError,
    ClientChanges,
    ClientSpec,
)
from tokensmith.core.audit import CLI
from tokensmith.core.mtls import MTLS_METHODS

_F = TypeVar("_F", bound=Callable[..., Any])

#: RFC 8705 §2.1.2: the option of each kind of registered subject.
_SUBJECT_OPTIONS = (
    ("subject_dn", "--tls-subject-dn", "the certificate's subject DN (RFC 4514)"),
    ("san_dns", "--tls-san-dns", "a DNS name among its subject alternative names"),
    ("san_uri", "--tls-san-uri", "a URI among its subject alternative names"),
    ("san_ip", "--tls-san-ip", "an IP address among its subject alternative names"),
    ("san_email", "--tls-san-email", "an e-mail address among its subject alternative names"),
)


def _mtls_options(func: _F) -> _F:
    """``--auth-method``, one ``--tls-*`` subject and ``--cert-bound-tokens`` (RFC 8705)."""
    for kind, flag, help_text in reversed(_SUBJECT_OPTIONS):
        func = click.option(
            flag, f"tls_{kind}", default=None, help=f"tls_client_auth: {help_text}."
        )(func)
    func = click.option(
        "--auth-method",
        type=click.Choice((*MTLS_METHODS, *SPEC_AUTH_METHODS)),
        default=None,
        help="Authenticate with a TLS client certificate (RFC 8705 §2), or client_secret_jwt: "
        "assertions signed with its secret (HMAC), no other method; the server keeps the secret "
        "sealed (needs TOKENSMITH_CLIENT_SECRET_JWT).",
    )(func)
    return func


def _tls_subject(given: dict[str, str | None]) -> tuple[str, str] | None:
    """The one ``--tls-*`` option given, as (kind, value)."""
    chosen = [(k.removeprefix("tls_"), v) for k, v in given.items() if v is not None]
    if len(chosen) > 1:
        raise AdminError("give one of --tls-subject-dn, --tls-san-* (RFC 8705 §2.1.2)")
    return chosen[0] if chosen else None


P = ParamSpec("P")
T = TypeVar("T")


@click.group("clients")
def clients() -> None:
    """Create, list, show, update, revoke, delete clients and rotate their secrets."""


def _details_types_option(fn: Callable[P, T]) -> Callable[P, T]:
    return click.option(
        "--authorization-details-type",
        "details_types",
        multiple=True,
        metavar="TYPE",
        help="Repeatable: the only RFC 9396 authorization_details types it may request "
        "(default: every type; 'none': no type).",
    )(fn)


def _details_types(given: tuple[str, ...]) -> tuple[str, ...] | None:
    """``--authorization-details-type``: none given, every type; ``none``, no type."""
    if not given:
        return None
    return () if given == ("none",) else given


@clients.command("create")
@click.option("--name", required=True)
@click.option("--scope", default="read", show_default=True, help="Space-separated scopes.")
@click.option("--default-scope", default=None, help="Granted when a request names none.")
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(GRANT_TYPES),
    help="Repeatable; default client_credentials.",
)
@click.option("--token-format", type=click.Choice(["jwt", "opaque"]), default=None)
@click.option("--ttl", type=int, default=None, help="Access token lifetime in seconds.")
@click.option("--merchant", default=None, help="Merchant id or name; becomes the token sub.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeatable.")
@click.option("--form-uri", default=None)
@click.option("--public", is_flag=True, help="No secret; must use PKCE.")
@click.option("--basic-only", is_flag=True, help="Accept client_secret_basic only.")
@click.option(
    "--require-par",
    is_flag=True,
    help="Accept its authorization requests only by PAR (RFC 9126).",
)
@click.option(
    "--require-dpop", is_flag=True, help="Token requests must carry a DPoP proof (RFC 9449)."
)
@click.option(
    "--jwks",
    "jwks",
    default=None,
    metavar="FILE|JSON",
    help="Public JWK Set: authenticates with private_key_jwt (RFC 7523), no secret.",
)
@click.option(
    "--jwks-uri", default=None, help="URL of its public JWK Set (https): private_key_jwt."
)
@click.option(
    "--profile",
    type=click.Choice(["default", "fapi2"]),
    default=None,
    help="Security profile; fapi2: FAPI 2.0 (default: the server's TOKENSMITH_PROFILE).",
)
@_mtls_options
@click.option(
    "--cert-bound-tokens",
    is_flag=True,
    help="Bind its tokens to its TLS client certificate (RFC 8705 §3).",
)
@_details_types_option
@json_option
@db_options
@with_env
async def create(
    env: Env,
    name: str,
    scope: str,
    default_scope: str | None,
    grant_types: tuple[str, ...],
    token_format: str | None,
    ttl: int | None,
    merchant: str | None,
    redirect_uris: tuple[str, ...],
    form_uri: str | None,
    public: bool,
    basic_only: bool,
    require_par: bool,
    require_dpop: bool,
    jwks: str | None,
    jwks_uri: str | None,
    profile: str | None,
    auth_method: str | None,
    cert_bound_tokens: bool,
    details_types: tuple[str, ...],
    as_json: bool,
    **tls: str | None,
) -> None:
    """Create a client and print its secret once."""
    spec = ClientSpec(
        name=name,
        scope=scope,
        grant_types=grant_types or ("client_credentials",),
        token_format=token_format,  # type: ignore[arg-type]
        access_token_ttl=ttl,
        merchant_id=await env.merchant_id(merchant),
        redirect_uris=redirect_uris,
        form_uri=form_uri,
        public=public,
        default_scope=default_scope,
        basic_only=basic_only,
        require_par=require_par,
        require_dpop=require_dpop,
        jwks=_jwks_text(jwks),
        jwks_uri=jwks_uri,
        profile=profile,  # type: ignore[arg-type]
        auth_method=auth_method,
        tls_subject=_tls_subject(tls),
        cert_bound_tokens=cert_bound_tokens,
        authorization_details_types=_details_types(details_types),
    )
    client, secret = await env.admin.clients.create(spec, by=CLI)
    data = client_json(client, env.clock.now()) | {"client_secret": secret}
    text = f"client_id:     {client.client_id}\n"
    if secret:
        text += f"client_secret: {secret}\n\nThe secret is shown only now. Store it safely."
    emit(data, as_json, text)


def _jwks_text(value: str | None) -> str | None:
    """``--jwks``: the JSON itself, or the name of a file holding it."""
    if value is None or value.lstrip().startswith("{"):
        return value
    try:
        return Path(value).read_text(encoding="utf-8")
    except OSError as exc:
        raise AdminError(f"cannot read --jwks file {value!r}: {exc.strerror}") from None


@clients.command("list")
@json_option
@db_options
@with_env
async def list_(env: Env, as_json: bool) -> None:
    """List clients."""
    now = env.clock.now()
    items = await env.admin.clients.listing()
    rows = [
        [
            c.client_id,
            c.name,
            " ".join(c.scopes),
            " ".join(c.grant_types),
            client_json(c, now)["status"],
        ]
        for c in items
    ]
    emit(
        [client_json(c, now) for c in items],
        as_json,
        table(rows, ["CLIENT_ID", "NAME", "SCOPES", "GRANTS", "STATUS"]),
    )


async def _get(env: Env, client_id: str) -> dict[str, object]:
    client = await env.admin.clients.get(client_id)
    if client is None:
        raise AdminError(f"no client {client_id!r}")
    return client_json(client, env.clock.now())


@clients.command("show")
@click.argument("client_id")
@json_option
@db_options
@with_env
async def show(env: Env, client_id: str, as_json: bool) -> None:
    """Show one client (never its secret)."""
    data = await _get(env, client_id)
    emit(data, as_json, "\n".join(f"{k}: {v}" for k, v in data.items()))


@clients.command("revoke")
@click.argument("client_id")
@json_option
@db_options
@with_env
async def revoke(env: Env, client_id: str, as_json: bool) -> None:
    """Revoke a client: its token requests fail and its tokens turn inactive."""
    await _get(env, client_id)
    await env.admin.clients.revoke(client_id, by=CLI)
    data = await _get(env, client_id)
    emit(data, as_json, f"revoked {client_id}")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--keep-old-for", type=int, default=0, show_default=True, help="Seconds the old secret lives."
)
@json_option
@db_options
@with_env
async def rotate_secret(env: Env, client_id: str, keep_old_for: int, as_json: bool) -> None:
    """Issue a new secret and print it once."""
    secret = await env.admin.clients.rotate_secret(client_id, keep_old_for, by=CLI)
    data = await _get(env, client_id) | {"client_secret": secret}
    emit(data, as_json, f"client_secret: {secret}\n\nThe secret is shown only now.")


@clients.command("update")
@click.argument("client_id")
@click.option("--name", default=None)
@click.option("--scope", default=None, help="Space-separated scopes; replaces them.")
@click.option("--ttl", type=int, default=None, help="Access token lifetime in seconds.")
@click.option(
    "--redirect-uri", "redirect_uris", multiple=True, help="Repeatable; replaces them all."
)
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(GRANT_TYPES),
    help="Repeatable; replaces them all.",
)
@click.option("--token-format", type=click.Choice(["jwt", "opaque"]), default=None)
@click.option(
    "--profile",
    type=click.Choice(["default", "fapi2", INHERIT]),
    default=None,
    help="Security profile; inherit: follow the server's TOKENSMITH_PROFILE.",
)
@click.option(
    "--require-par/--no-require-par",
    default=None,
    help="Accept its authorization requests only by PAR (RFC 9126).",
)
@click.option(
    "--require-dpop/--no-require-dpop",
    default=None,
    help="Token requests must carry a DPoP proof (RFC 9449).",
)
@_mtls_options
@click.option(
    "--cert-bound-tokens/--no-cert-bound-tokens",
    default=None,
    help="Bind its tokens to its TLS client certificate (RFC 8705 §3), or stop.",
)
@_details_types_option
@click.option(
    "--jwks",
    "jwks",
    default=None,
    metavar="FILE|JSON",
    help="Replace its public JWK Set (private_key_jwt, RFC 7523).",
)
@click.option("--jwks-uri", default=None, help="Replace its keys by the JWK Set at this URL.")
@click.option("--clear-keys", is_flag=True, help="Remove its keys (a client with a secret only).")
@json_option
@db_options
@with_env
async def update(
    env: Env,
    client_id: str,
    name: str | None,
    scope: str | None,
    ttl: int | None,
    redirect_uris: tuple[str, ...],
    grant_types: tuple[str, ...],
    token_format: str | None,
    profile: str | None,
    require_par: bool | None,
    require_dpop: bool | None,
    auth_method: str | None,
    cert_bound_tokens: bool | None,
    details_types: tuple[str, ...],
    jwks: str | None,
    jwks_uri: str | None,
    clear_keys: bool,
    as_json: bool,
    **tls: str | None,
) -> None:
    """Change a client, checked as create checks a new one; what is not given stays.
    New keys apply at once (the secret of a client that has one keeps working)."""
    keys_given = jwks is not None or jwks_uri is not None or clear_keys
    if clear_keys and (jwks is not None or jwks_uri is not None):
        raise AdminError("--clear-keys removes the keys: give it without --jwks / --jwks-uri")
    changes = ClientChanges(
        name=name,
        scope=scope,
        access_token_ttl=ttl,
        redirect_uris=redirect_uris or None,
        grant_types=grant_types or None,
        token_format=token_format,  # type: ignore[arg-type]
        profile=profile,
        require_par=require_par,
        require_dpop=require_dpop,
        auth_method=auth_method,
        tls_subject=_tls_subject(tls),
        cert_bound_tokens=cert_bound_tokens,
        authorization_details_types=_details_types(details_types),
    )
    if changes.given() or not keys_given:
        client = await env.admin.clients.change(client_id, changes, by=CLI)
    if keys_given:
        client = await env.admin.clients.set_keys(
            client_id, jwks=_jwks_text(jwks), jwks_uri=jwks_uri, by=CLI
        )
    data = client_json(client, env.clock.now())
    emit(data, as_json, "\n".join(f"{k}: {v}" for k, v in data.items()))


@clients.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@db_options
@with_env
async def delete(env: Env, client_id: str, yes: bool, as_json: bool) -> None:
    """Delete a client with its secrets and tokens: they are refused at once."""
    await _get(env, client_id)
    if not yes:
        click.confirm(f"Delete client {client_id} and every token it holds?", abort=True, err=True)
    if not await env.admin.clients.delete(client_id, by=CLI):
        raise AdminError(f"no client {client_id!r}")
    emit({"client_id": client_id, "status": "deleted"}, as_json, f"deleted {client_id}")
