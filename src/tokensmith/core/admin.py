"""Administrative operations shared by the CLI and the merchant panel."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

from tokensmith.core.authorization_details import check_type_name
from tokensmith.core.client_assertion import check_jwks_uri, parse_jwks
from tokensmith.core.clock import Clock
from tokensmith.core.credentials import hash_secret, new_client_id, new_secret, random_urlsafe
from tokensmith.core.models import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    REFRESH_TOKEN,
    ApiKey,
    Client,
    ClientSecret,
    Merchant,
    Profile,
    TokenFormat,
)
from tokensmith.core.mtls import (
    MTLS_METHODS,
    SELF_SIGNED_TLS_CLIENT_AUTH,
    SUBJECT_KINDS,
    TLS_CLIENT_AUTH,
    check_tls_subject,
)
from tokensmith.core.ports import ApiKeyKeeper, ClientStore, MerchantStore
from tokensmith.core.profile import FAPI2, FAPI2_AUTH_METHODS, PROFILES
from tokensmith.core.randomness import Randomness
from tokensmith.core.scopes import parse_scope
from tokensmith.core.uris import SCRIPT_SCHEMES, split_uri

__all__ = [
    "AUTH_METHODS",
    "GRANT_TYPES",
    "INHERIT",
    "SPEC_AUTH_METHODS",
    "AdminError",
    "ClientChanges",
    "ClientSpec",
    "apply_changes",
    "change_client_keys",
    "check_client_spec",
    "check_profile",
    "check_redirect_uri",
    "create_api_key",
    "create_client",
    "create_merchant",
    "replace_metadata",
    "resolve_merchant",
    "rotate_client_secret",
    "spec_of",
]

GRANT_TYPES = (CLIENT_CREDENTIALS, AUTHORIZATION_CODE, REFRESH_TOKEN)
#: RFC 7591 §2 ``token_endpoint_auth_method`` values a client may be given
#: (``client_secret_jwt`` is not one: :mod:`tokensmith.core.client_assertion`).
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")


class AdminError(ValueError):
    """A request an operator made that cannot be carried out; the message says why."""


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """What ``tokensmith clients create`` and the panel's "Add new key" ask for."""

    name: str
    scope: str = "read"
    grant_types: tuple[str, ...] = (CLIENT_CREDENTIALS,)
    token_format: TokenFormat | None = None
    access_token_ttl: int | None = None
    merchant_id: str | None = None
    redirect_uris: tuple[str, ...] = ()
    form_uri: str | None = None
    public: bool = False
    default_scope: str | None = None
    basic_only: bool = False
    #: RFC 9126 §6: the client's authorization requests must be pushed (``--require-par``).
    require_par: bool = False
    #: RFC 9449 §5.2 ``dpop_bound_access_tokens``: token requests must carry a DPoP proof.
    require_dpop: bool = False
    #: RFC 7591 §2 ``jwks`` (JSON text) or ``jwks_uri``: the client authenticates with
    #: ``private_key_jwt`` (RFC 7523 §2.2) and gets no secret.
    jwks: str | None = None
    jwks_uri: str | None = None
    #: The security profile the client follows (``--profile``); ``None``: the server's.
    profile: Profile | None = None
    #: RFC 7591 §2 ``token_endpoint_auth_method``: the one method the client uses (``None``:
    #: as ``public``, the keys and ``basic_only`` say); RFC 8705 §2: ``tls_client_auth`` or
    #: ``self_signed_tls_client_auth``; ``client_secret_jwt`` (RFC 7523 §2.2, OIDC Core §9):
    #: the client signs assertions with its secret (HMAC), and authenticates no other way.
    auth_method: str | None = None
    #: RFC 8705 §2.1.2: (kind, value) with kind a key of
    #: :data:`~tokensmith.core.mtls.SUBJECT_KINDS`, for ``tls_client_auth``.
    tls_subject: tuple[str, str] | None = None
    #: RFC 8705 §3.4 ``tls_client_certificate_bound_access_tokens``.
    cert_bound_tokens: bool = False
    #: RFC 9396 §10 ``authorization_details_types``: the types it may request (``None``:
    #: all; ``()``: none).
    authorization_details_types: tuple[str, ...] | None = None
    #: RFC 7592: the hash of the client's registration access token (registered clients).
    registration_token_hash: str | None = field(default=None, repr=False)
    #: RFC 7591 §2 metadata kept to be read back, a JSON object as text.
    registration_metadata: str | None = None


#: Methods ``clients create/update --auth-method`` may name besides mutual TLS's.
SPEC_AUTH_METHODS = ("client_secret_jwt",)
#: Random bytes of a ``client_secret_jwt`` client's secret: an HMAC key at least as long
#: as HS512's hash (RFC 7518 §3.2), 86 characters.
SECRET_JWT_BYTES = 64
#: Seals a ``client_secret_jwt`` client's secret (text in, text out).
Seal = Callable[[str], str]


#: ``clients update --profile inherit``: the client follows the server's profile again.
INHERIT = "inherit"


def check_profile(profile: Profile | None, auth_methods: tuple[str, ...]) -> None:
    """A FAPI 2.0 client must be able to authenticate as the profile allows (FAPI 2.0
    §5.3.2.1: ``private_key_jwt`` or mutual TLS): not public, not with a secret only."""
    if profile == FAPI2 and not set(auth_methods) & FAPI2_AUTH_METHODS:
        raise AdminError(
            "a FAPI 2.0 client must authenticate with private_key_jwt (register its keys "
            "with --jwks or --jwks-uri) or mutual TLS (--auth-method), not with a secret, "
            "and cannot be public"
        )


def _check_details_types(types: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Each a possible type name (RFC 9396 §2), once."""
    if types is None:
        return None
    try:
        return tuple(dict.fromkeys(check_type_name(t) for t in types))
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def check_redirect_uri(uri: str) -> None:
    """RFC 6749 §3.1.2: absolute, no fragment; RFC 9700 §2.1: https, or http on loopback;
    never a scheme that runs script (RFC 9700 §4.1)."""
    parts = split_uri(uri)
    if parts is None:
        raise AdminError(f"redirect URI {uri!r} is not a well-formed URI")
    if not parts.scheme or not parts.netloc or parts.fragment:
        raise AdminError(f"redirect URI {uri!r} must be absolute and have no fragment")
    if parts.scheme.lower() in SCRIPT_SCHEMES:
        raise AdminError(f"redirect URI {uri!r} must not use the {parts.scheme}: scheme")
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme == "http" and not loopback:
        raise AdminError(f"redirect URI {uri!r} must use https (http only on loopback)")


def _validate(spec: ClientSpec, max_ttl: int, *, allow_loopback: bool = False) -> tuple[str, ...]:
    if not spec.name.strip():
        raise AdminError("a name is required")
    scopes = parse_scope(spec.scope)
    if not scopes:
        raise AdminError("at least one scope is required")
    unknown = [g for g in spec.grant_types if g not in GRANT_TYPES]
    if unknown or not spec.grant_types:
        raise AdminError(f"grant types must be among {', '.join(GRANT_TYPES)}")
    if spec.access_token_ttl is not None and not 0 < spec.access_token_ttl <= max_ttl:
        raise AdminError(f"ttl must be between 1 and {max_ttl} seconds")
    if AUTHORIZATION_CODE in spec.grant_types and not spec.redirect_uris:
        raise AdminError("authorization_code clients need at least one redirect URI")
    if spec.public and CLIENT_CREDENTIALS in spec.grant_types:
        raise AdminError("public clients cannot use client_credentials")
    for uri in spec.redirect_uris:
        check_redirect_uri(uri)
    if spec.default_scope is not None:
        extra = set(parse_scope(spec.default_scope)) - set(scopes)
        if extra:
            raise AdminError("default scopes must be among the client's scopes")
    _check_keys(spec, allow_loopback)
    _check_auth_method(spec)
    _check_mtls(spec)
    return scopes


def _check_auth_method(spec: ClientSpec) -> None:
    """RFC 7591 §2: ``none`` is a public client, ``private_key_jwt`` one with keys, the
    ``client_secret_*`` methods one with a secret, ``client_secret_jwt`` one with a secret
    and no keys (the RFC 8705 methods: :func:`_check_mtls`)."""
    method = spec.auth_method
    if method is None or method in MTLS_METHODS:
        return
    if method == "client_secret_jwt":
        if spec.public or spec.basic_only or spec.jwks is not None or spec.jwks_uri is not None:
            raise AdminError(
                "a client_secret_jwt client has a secret and no keys: not public, not basic-only"
            )
        return
    if method not in AUTH_METHODS:
        allowed = ", ".join((*AUTH_METHODS, *SPEC_AUTH_METHODS, *MTLS_METHODS))
        raise AdminError(f"token_endpoint_auth_method must be one of {allowed}")
    keyed = spec.jwks is not None or spec.jwks_uri is not None
    if (method == "none") != spec.public:
        raise AdminError("token_endpoint_auth_method none is the method of public clients")
    if (method == "private_key_jwt") != keyed:
        raise AdminError("private_key_jwt needs jwks or jwks_uri, and only it uses them")


def _check_mtls(spec: ClientSpec) -> None:
    """RFC 8705 §2.1: a ``tls_client_auth`` client registers exactly one subject DN or SAN;
    §2.2: a ``self_signed_tls_client_auth`` client registers its certificates in ``jwks``
    or at ``jwks_uri``. Neither has a secret, and neither is public."""
    method = spec.auth_method
    if method is None or method not in MTLS_METHODS:
        if spec.tls_subject is not None:
            raise AdminError("a tls_client_auth subject needs --auth-method tls_client_auth")
        return
    if spec.public or spec.basic_only:
        raise AdminError(f"a {method} client is not public, and has no secret")
    keyed = spec.jwks is not None or spec.jwks_uri is not None
    if method == TLS_CLIENT_AUTH:
        if spec.tls_subject is None:
            names = ", ".join(SUBJECT_KINDS.values())
            raise AdminError(f"tls_client_auth needs exactly one of {names} (RFC 8705 §2.1.2)")
        if keyed:
            raise AdminError("a tls_client_auth client registers no jwks (RFC 8705 §2.1)")
        kind, value = spec.tls_subject
        try:
            check_tls_subject(kind, value)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
    elif spec.tls_subject is not None:
        raise AdminError("a self_signed_tls_client_auth client registers no subject")
    elif not keyed:
        raise AdminError(
            "self_signed_tls_client_auth needs --jwks or --jwks-uri with its certificates"
        )


def _check_keys(spec: ClientSpec, allow_loopback: bool = False) -> None:
    """RFC 7591 §2: ``jwks`` or ``jwks_uri``, not both; public signing keys only, an
    https ``jwks_uri`` on a public host (loopback, http too, only with ``allow_loopback``);
    a client with keys has no secret to restrict."""
    if spec.jwks is None and spec.jwks_uri is None:
        return
    if spec.jwks is not None and spec.jwks_uri is not None:
        raise AdminError("register jwks or jwks_uri, not both (RFC 7591 §2)")
    if spec.public or spec.basic_only:
        raise AdminError("a client with keys uses private_key_jwt: not public, not basic-only")
    try:
        if spec.jwks is not None:
            parse_jwks(spec.jwks)
        else:
            check_jwks_uri(spec.jwks_uri or "", allow_loopback=allow_loopback)
    except ValueError as exc:
        raise AdminError(str(exc)) from None


def _stored_jwks(text: str | None) -> str | None:
    """The registered JWK Set as compact JSON (its keys checked by :func:`parse_jwks`)."""
    if text is None:
        return None
    return json.dumps({"keys": parse_jwks(text)}, separators=(",", ":"))


def check_client_spec(spec: ClientSpec, max_ttl: int) -> tuple[str, ...]:
    """Raise :class:`AdminError` unless :func:`create_client` would accept ``spec`` (the
    panel checks an edited app this way); return its scopes."""
    return _validate(spec, max_ttl)


@dataclass(frozen=True, slots=True)
class ClientChanges:
    """What ``tokensmith clients update`` changes; ``None`` keeps the client's value. The
    tuples replace the client's lists whole."""

    name: str | None = None
    scope: str | None = None
    access_token_ttl: int | None = None
    redirect_uris: tuple[str, ...] | None = None
    grant_types: tuple[str, ...] | None = None
    token_format: TokenFormat | None = None
    #: ``default`` or ``fapi2``, or :data:`INHERIT` to follow the server's profile again.
    profile: str | None = None
    require_par: bool | None = None
    require_dpop: bool | None = None
    #: RFC 8705: switch to ``tls_client_auth`` or ``self_signed_tls_client_auth``.
    auth_method: str | None = None
    tls_subject: tuple[str, str] | None = None
    cert_bound_tokens: bool | None = None
    authorization_details_types: tuple[str, ...] | None = None

    def given(self) -> dict[str, object]:
        """The fields to change and their new values."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


def spec_of(client: Client) -> ClientSpec:
    """The spec that would create ``client`` as it is now (its secrets aside)."""
    return ClientSpec(
        name=client.name,
        scope=" ".join(client.scopes),
        grant_types=client.grant_types,
        token_format=client.token_format,
        access_token_ttl=client.access_token_ttl,
        merchant_id=client.merchant_id,
        redirect_uris=client.redirect_uris,
        form_uri=client.form_uri,
        public=client.public,
        default_scope=None if client.default_scopes is None else " ".join(client.default_scopes),
        basic_only=client.auth_methods == ("client_secret_basic",),
        require_par=client.require_par,
        require_dpop=client.require_dpop,
        profile=client.profile,
        jwks=client.jwks,
        jwks_uri=client.jwks_uri,
        auth_method=next((m for m in client.auth_methods if m in MTLS_METHODS), None),
        tls_subject=_subject_of(client),
        cert_bound_tokens=client.cert_bound_tokens,
        authorization_details_types=client.authorization_details_types,
    )


def _subject_of(client: Client) -> tuple[str, str] | None:
    if client.tls_auth_kind is None or client.tls_auth_value is None:
        return None
    return client.tls_auth_kind, client.tls_auth_value


def _methods(spec: ClientSpec) -> tuple[str, ...]:
    """The client's authentication methods (RFC 7591 §2 ``token_endpoint_auth_method``)."""
    if spec.auth_method is not None:
        return (spec.auth_method,)
    if spec.public:
        return ("none",)
    if spec.jwks is not None or spec.jwks_uri is not None:
        return ("private_key_jwt",)
    if spec.basic_only:
        return ("client_secret_basic",)
    return ("client_secret_basic", "client_secret_post")


def _tls_fields(spec: ClientSpec) -> dict[str, object]:
    kind, value = spec.tls_subject if spec.tls_subject is not None else (None, None)
    if kind is not None and value is not None:
        value = check_tls_subject(kind, value)
    return {"tls_auth_kind": kind, "tls_auth_value": value}


def apply_changes(client: Client, changes: ClientChanges, max_ttl: int) -> Client:
    """``client`` with ``changes``, checked by the rules :func:`create_client` applies
    (RFC 6749 §3.1.2 redirect URIs, grant types, scopes, ttl), as a whole: a change that
    leaves the client inconsistent (``authorization_code`` without a redirect URI, default
    scopes outside its scopes) is refused with :class:`AdminError`."""
    given = changes.given()
    if not given:
        raise AdminError("nothing to change: give at least one option")
    if "profile" in given:
        given["profile"] = _profile(str(given["profile"]))
    spec = replace(spec_of(client), **given)  # type: ignore[arg-type]
    if changes.auth_method == SELF_SIGNED_TLS_CLIENT_AUTH:
        spec = replace(spec, tls_subject=None)
    scopes = _validate(spec, max_ttl)
    mtls: dict[str, object] = {"cert_bound_tokens": spec.cert_bound_tokens}
    if changes.auth_method is not None or changes.tls_subject is not None:
        mtls |= _tls_fields(spec) | {"auth_methods": _methods(spec)}
    methods = mtls.get("auth_methods", client.auth_methods)
    check_profile(spec.profile, methods)  # type: ignore[arg-type]
    return client.evolve(
        name=spec.name.strip(),
        scopes=scopes,
        grant_types=spec.grant_types,
        token_format=spec.token_format,
        access_token_ttl=spec.access_token_ttl,
        redirect_uris=spec.redirect_uris,
        profile=spec.profile,
        require_par=spec.require_par,
        require_dpop=spec.require_dpop,
        **mtls,
        authorization_details_types=_check_details_types(spec.authorization_details_types),
    )


def _profile(value: str) -> Profile | None:
    """A profile name as ``--profile`` gives it; :data:`INHERIT` is ``None``."""
    if value == INHERIT:
        return None
    for profile in PROFILES:
        if value == profile:
            return profile
    raise AdminError(f"profile must be default, fapi2 or {INHERIT}")


def change_client_keys(
    client: Client, jwks: str | None, jwks_uri: str | None, *, allow_loopback: bool = False
) -> Client:
    """``client`` with new public keys (RFC 7591 §2 ``jwks`` or ``jwks_uri``, checked as at
    registration), or with none when both are ``None``.

    Registering keys adds ``private_key_jwt`` (RFC 7523 §2.2) to the client's methods; a
    client with a secret keeps its secret methods, so it can move to its keys without a
    gap. Clearing them removes ``private_key_jwt``; a client whose only method it is keeps
    its keys (it would have no way left to authenticate)."""
    if client.public:
        raise AdminError("public clients do not authenticate: they have no keys")
    if "client_secret_jwt" in client.auth_methods:
        raise AdminError("a client_secret_jwt client signs with its secret: it has no keys")
    if jwks is None and jwks_uri is None:
        if client.jwks is None and client.jwks_uri is None:
            raise AdminError("this client has no keys to clear")
        methods = tuple(m for m in client.auth_methods if m != "private_key_jwt")
        if not methods:
            raise AdminError(
                "this client authenticates only with its keys: register new keys instead "
                "of clearing them, or delete the client"
            )
        return client.evolve(jwks=None, jwks_uri=None, auth_methods=methods)
    if jwks is not None and jwks_uri is not None:
        raise AdminError("register jwks or jwks_uri, not both (RFC 7591 §2)")
    try:
        stored = _stored_jwks(jwks)
        if jwks_uri is not None:
            check_jwks_uri(jwks_uri, allow_loopback=allow_loopback)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    methods = client.auth_methods
    if "private_key_jwt" not in methods:
        methods = (*methods, "private_key_jwt")
    return client.evolve(jwks=stored, jwks_uri=jwks_uri, auth_methods=methods)


async def create_client(
    store: ClientStore,
    clock: Clock,
    rand: Randomness,
    spec: ClientSpec,
    max_ttl: int,
    *,
    allow_loopback_jwks: bool = False,
    seal: Seal | None = None,
) -> tuple[Client, str | None]:
    """Make a client; returns it and its secret (shown once, stored only as a hash). A
    ``jwks_uri`` on loopback only with ``allow_loopback_jwks`` (a server on loopback). A
    ``client_secret_jwt`` client's secret is also kept sealed by ``seal``."""
    scopes = _validate(spec, max_ttl, allow_loopback=allow_loopback_jwks)
    secret_jwt = spec.auth_method == "client_secret_jwt"
    if secret_jwt and seal is None:
        raise AdminError("client_secret_jwt needs the server's secret key to seal the secret")
    now = clock.now()
    methods = _methods(spec)
    check_profile(spec.profile, methods)
    secreted = any(m.startswith("client_secret_") for m in methods)
    secret = _new_secret(rand, secret_jwt) if secreted else None
    client = Client(
        client_id=new_client_id(rand),
        name=spec.name.strip(),
        scopes=scopes,
        default_scopes=None if spec.default_scope is None else parse_scope(spec.default_scope),
        grant_types=spec.grant_types,
        secrets=() if secret is None else (_client_secret(secret, now, secret_jwt, seal),),
        token_format=spec.token_format,
        access_token_ttl=spec.access_token_ttl,
        merchant_id=spec.merchant_id,
        redirect_uris=spec.redirect_uris,
        form_uri=spec.form_uri,
        auth_methods=_methods(spec),
        created_at=now,
        require_par=spec.require_par,
        require_dpop=spec.require_dpop,
        jwks=_stored_jwks(spec.jwks),
        jwks_uri=spec.jwks_uri,
        profile=spec.profile,
        cert_bound_tokens=spec.cert_bound_tokens,
        **_tls_fields(spec),  # type: ignore[arg-type]
        authorization_details_types=_check_details_types(spec.authorization_details_types),
        registration_token_hash=spec.registration_token_hash,
        registration_metadata=spec.registration_metadata,
    )
    await store.add_client(client)
    return client, secret


def _has_secret(methods: tuple[str, ...]) -> bool:
    return any(m.startswith("client_secret_") for m in methods)


def replace_metadata(client: Client, spec: ClientSpec, max_ttl: int) -> Client:
    """``client`` with every field ``spec`` gives replaced (RFC 7592 §2.2), checked as a
    new client would be; its id, merchant, secrets and creation time stay. A client with a
    secret keeps one, a client without gets none: the method may change within a kind."""
    scopes = _validate(spec, max_ttl)
    methods = _methods(spec)
    if _has_secret(methods) != _has_secret(client.auth_methods):
        raise AdminError("token_endpoint_auth_method cannot change between secret and no secret")
    return client.evolve(
        name=spec.name.strip(),
        scopes=scopes,
        default_scopes=None if spec.default_scope is None else parse_scope(spec.default_scope),
        grant_types=spec.grant_types,
        token_format=spec.token_format,
        access_token_ttl=spec.access_token_ttl,
        redirect_uris=spec.redirect_uris,
        auth_methods=methods,
        require_par=spec.require_par,
        require_dpop=spec.require_dpop,
        jwks=_stored_jwks(spec.jwks),
        jwks_uri=spec.jwks_uri,
        registration_token_hash=spec.registration_token_hash,
        registration_metadata=spec.registration_metadata,
    )


def _new_secret(rand: Randomness, secret_jwt: bool) -> str:
    """256 random bits; 512 for a ``client_secret_jwt`` client (an HMAC key, RFC 7518 §3.2)."""
    return random_urlsafe(rand, SECRET_JWT_BYTES) if secret_jwt else new_secret(rand)


def _client_secret(secret: str, now: float, secret_jwt: bool, seal: Seal | None) -> ClientSecret:
    """The stored form of a new secret: its hash, and sealed for ``client_secret_jwt``."""
    if not secret_jwt:
        return ClientSecret(hash_secret(secret), now)
    if seal is None:
        raise AdminError("client_secret_jwt needs the server's secret key to seal the secret")
    return ClientSecret(hash_secret(secret), now, sealed=seal(secret))


async def rotate_client_secret(
    store: ClientStore,
    clock: Clock,
    rand: Randomness,
    client_id: str,
    keep_old_for: int,
    seal: Seal | None = None,
) -> str:
    """A new secret; the old ones keep working for ``keep_old_for`` seconds. A
    ``client_secret_jwt`` client's new secret is sealed too (``seal``)."""
    client = await store.get_client(client_id)
    if client is None:
        raise AdminError(f"no client {client_id!r}")
    if client.public:
        raise AdminError("public clients have no secret")
    if client.auth_methods == ("private_key_jwt",):
        raise AdminError("this client authenticates with its keys (private_key_jwt), no secret")
    if any(m in MTLS_METHODS for m in client.auth_methods):
        raise AdminError("this client authenticates with its TLS certificate, no secret")
    if keep_old_for < 0:
        raise AdminError("--keep-old-for must not be negative")
    now = clock.now()
    secret = _new_secret(rand, "client_secret_jwt" in client.auth_methods)
    stored = _client_secret(secret, now, "client_secret_jwt" in client.auth_methods, seal)
    await store.rotate_secret(client_id, stored, now + keep_old_for)
    return secret


async def create_api_key(
    store: ApiKeyKeeper, clock: Clock, rand: Randomness, name: str, merchant_id: str | None = None
) -> tuple[ApiKey, str]:
    """A developer app key for the ``tbc`` dialect's ``apikey`` header, shown once."""
    if not name.strip():
        raise AdminError("a name is required")
    plain = new_secret(rand)
    key = ApiKey(
        key_id="ak_" + new_client_id(rand),
        name=name.strip(),
        key_hash=hash_secret(plain),
        created_at=clock.now(),
        merchant_id=merchant_id,
    )
    await store.add_api_key(key)
    return key, plain


async def create_merchant(
    store: MerchantStore, clock: Clock, rand: Randomness, name: str
) -> Merchant:
    if not name.strip():
        raise AdminError("a name is required")
    if await store.find_merchant_by_name(name.strip()) is not None:
        raise AdminError(f"a merchant named {name!r} exists")
    merchant_id = "m_" + base64.b32encode(rand.token_bytes(5)).decode("ascii").lower()
    merchant = Merchant(merchant_id=merchant_id, name=name.strip(), created_at=clock.now())
    await store.add_merchant(merchant)
    return merchant


async def resolve_merchant(store: MerchantStore, ref: str) -> Merchant:
    """A merchant by id or by name."""
    merchant = await store.get_merchant(ref) or await store.find_merchant_by_name(ref)
    if merchant is None:
        raise AdminError(f"no merchant {ref!r}")
    return merchant
