"""The admin API's operations, one short handler each: parse (done by the operation's
models), call one core service, render. A merchant's client reaches its merchant's objects
only; another merchant's are answered 404, as if they did not exist."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel

from tokensmith.core.admin import ClientChanges, ClientSpec
from tokensmith.core.admin_api import (
    ADMIN_ALL,
    ADMIN_SCOPES,
    BadCursor,
    Page,
    paginate,
    search_text,
)
from tokensmith.core.audit import AuditCursor, AuditEvent, AuditQuery, By
from tokensmith.core.authorization_details import load
from tokensmith.core.authorizations import AuthorizedApp
from tokensmith.core.client_admin import kind_of
from tokensmith.core.consent_resources import ConsentNotActive
from tokensmith.core.models import (
    ApiKey,
    Client,
    ConsentResource,
    Grantor,
    Merchant,
    SigningKeyRecord,
    User,
)
from tokensmith.core.scopes import parse_scope
from tokensmith.web.admin.framework import (
    Call,
    Failure,
    Operation,
    Result,
    cursor_failure,
    not_found,
)
from tokensmith.web.admin.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyPage,
    AuditEventOut,
    AuditEventPage,
    AuditQueryIn,
    AuthorizedAppOut,
    AuthorizedAppPage,
    ClientCreate,
    ClientCreated,
    ClientKeys,
    ClientOut,
    ClientPage,
    ClientUpdate,
    ConsentOut,
    ConsentPage,
    ConsentQuery,
    KeyRotate,
    ListQuery,
    MerchantCreate,
    MerchantOut,
    MerchantPage,
    SecretRotate,
    SecretRotated,
    SigningKeyOut,
    SigningKeyPage,
    TokensRevoked,
    UserCreate,
    UserOut,
    UserPage,
    Withdrawn,
    iso,
)

__all__ = ["OPERATIONS"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def _as(model: type[M], value: BaseModel | None) -> M:
    assert isinstance(value, model)
    return value


def _page(call: Call, items: list[T], key: Any, text: Any) -> Page[T]:
    q = _as(ListQuery, call.query)
    try:
        return paginate(items, key, limit=q.limit, cursor=q.cursor, q=q.q, text=text)
    except BadCursor as exc:
        raise cursor_failure(exc) from None


def _scope_of(call: Call) -> str | None:
    """The merchant a listing is confined to: the caller's, or the one asked for."""
    q = _as(ListQuery, call.query)
    mine = call.principal.merchant_id
    if mine is not None and q.merchant_id not in (None, mine):
        raise not_found(f"merchant {q.merchant_id!r}")
    return mine or q.merchant_id


# -- merchants -----------------------------------------------------------------------------


def merchant_out(m: Merchant) -> MerchantOut:
    return MerchantOut(
        merchant_id=m.merchant_id,
        name=m.name,
        status="active" if m.active else "disabled",
        created_at=iso(m.created_at) or "",
        disabled_at=iso(m.disabled_at),
    )


async def _merchant(call: Call, merchant_id: str) -> Merchant:
    call.merchant_in_reach(merchant_id, f"merchant {merchant_id!r}")
    merchant = await call.ctx.merchants.get(merchant_id)
    if merchant is None:
        raise not_found(f"merchant {merchant_id!r}")
    return merchant


async def list_merchants(call: Call) -> Result:
    everyone = await call.ctx.merchants.listing()
    mine = [m for m in everyone if call.principal.sees(m.merchant_id)]
    page = _page(
        call,
        mine,
        lambda m: (m.created_at, m.merchant_id),
        lambda m: search_text(m.merchant_id, m.name),
    )
    return Result(
        MerchantPage(items=[merchant_out(m) for m in page.items], next_cursor=page.next_cursor)
    )


async def create_merchant(call: Call) -> Result:
    body = _as(MerchantCreate, call.body)
    merchant = await call.ctx.merchants.create(body.name, by=call.by)
    return Result(merchant_out(merchant), 201, merchant.merchant_id, merchant.merchant_id)


async def get_merchant(call: Call) -> Result:
    return Result(merchant_out(await _merchant(call, call.params["merchant_id"])))


async def disable_merchant(call: Call) -> Result:
    merchant_id = call.params["merchant_id"]
    await _merchant(call, merchant_id)
    merchant = await call.ctx.merchants.get(merchant_id)
    if merchant is not None and merchant.active:
        merchant = await call.ctx.merchants.disable(merchant_id, by=call.by)
    assert merchant is not None
    return Result(merchant_out(merchant), 200, merchant_id, merchant_id)


# -- users ---------------------------------------------------------------------------------


def user_out(u: User) -> UserOut:
    return UserOut(
        user_id=u.user_id,
        email=u.email,
        role=u.role,
        merchant_id=u.merchant_id,
        status="active" if u.active else "disabled",
        created_at=iso(u.created_at) or "",
        disabled_at=iso(u.disabled_at),
    )


async def list_users(call: Call) -> Result:
    merchant_id = (await _merchant(call, call.params["merchant_id"])).merchant_id
    users = await call.ctx.users.listing(merchant_id)
    page = _page(
        call, users, lambda u: (u.created_at, u.user_id), lambda u: search_text(u.user_id, u.email)
    )
    return Result(UserPage(items=[user_out(u) for u in page.items], next_cursor=page.next_cursor))


async def create_user(call: Call) -> Result:
    merchant_id = (await _merchant(call, call.params["merchant_id"])).merchant_id
    body = _as(UserCreate, call.body)
    user = await call.ctx.users.create(
        email=body.email,
        password=body.password,
        role=body.role,
        merchant=merchant_id,
        by=call.by,
    )
    return Result(user_out(user), 201, user.user_id, merchant_id, {"role": user.role})


async def get_user(call: Call) -> Result:
    merchant_id = call.params["merchant_id"]
    call.merchant_in_reach(merchant_id, "user")
    user = await call.ctx.users.member(merchant_id, call.params["user_id"])
    if user is None:
        raise not_found(f"user {call.params['user_id']!r}")
    return Result(user_out(user))


async def disable_user(call: Call) -> Result:
    merchant_id, user_id = call.params["merchant_id"], call.params["user_id"]
    call.merchant_in_reach(merchant_id, "user")
    user = await call.ctx.users.disable_member(merchant_id, user_id, by=call.by)
    if user is None:
        raise not_found(f"user {user_id!r}")
    return Result(user_out(user), 200, user_id, merchant_id)


# -- clients -------------------------------------------------------------------------------


def _status(c: Client) -> Any:
    if c.revoked_at is not None:
        return "revoked"
    return "disabled" if c.disabled_at is not None else "active"


def client_fields(c: Client, now: float) -> dict[str, Any]:
    return {
        "client_id": c.client_id,
        "name": c.name,
        "merchant_id": c.merchant_id,
        "kind": kind_of(c),
        "status": _status(c),
        "scope": " ".join(c.scopes),
        "default_scope": None if c.default_scopes is None else " ".join(c.default_scopes),
        "grant_types": list(c.grant_types),
        "token_endpoint_auth_methods": list(c.auth_methods),
        "token_format": c.token_format,
        "access_token_ttl": c.access_token_ttl,
        "redirect_uris": list(c.redirect_uris),
        "require_par": c.require_par,
        "require_dpop": c.require_dpop,
        "jwks": None if c.jwks is None else json.loads(c.jwks),
        "jwks_uri": c.jwks_uri,
        "live_secrets": sum(1 for s in c.secrets if s.valid_at(now)),
        "created_at": iso(c.created_at) or "",
        "disabled_at": iso(c.disabled_at),
        "revoked_at": iso(c.revoked_at),
        "tokens_revoked_before": iso(c.tokens_revoked_before),
    }


def client_out(call: Call, c: Client) -> ClientOut:
    return ClientOut(**client_fields(c, call.ctx.clock.now()))


def _check_admin_scopes(call: Call, scope: str | None) -> None:
    """A caller grants no admin scope it lacks: a client it creates or changes gets admin
    scopes only among the caller's own."""
    if scope is None:
        return
    wanted = {s for s in parse_scope(scope) if s == ADMIN_ALL or s in ADMIN_SCOPES}
    missing = wanted - call.principal.admin_scopes()
    if missing:
        raise Failure(403, "scope_escalation", f"you cannot grant {', '.join(sorted(missing))}")


async def _client(call: Call) -> Client:
    client_id = call.params["client_id"]
    client = await call.ctx.client_admin.get(client_id)
    if client is None or not call.principal.sees(client.merchant_id):
        raise not_found(f"client {client_id!r}")
    return client


async def list_clients(call: Call) -> Result:
    clients = await call.ctx.client_admin.listing(_scope_of(call))
    page = _page(
        call,
        clients,
        lambda c: (c.created_at, c.client_id),
        lambda c: search_text(c.client_id, c.name),
    )
    items = [client_out(call, c) for c in page.items]
    return Result(ClientPage(items=items, next_cursor=page.next_cursor))


async def create_client(call: Call) -> Result:
    body = _as(ClientCreate, call.body)
    merchant_id = call.principal.merchant_id or body.merchant_id
    if body.merchant_id not in (None, merchant_id):
        raise not_found(f"merchant {body.merchant_id!r}")
    if merchant_id is not None and await call.ctx.merchants.get(merchant_id) is None:
        raise not_found(f"merchant {merchant_id!r}")
    _check_admin_scopes(call, body.scope)
    spec = ClientSpec(
        name=body.name,
        scope=body.scope,
        grant_types=tuple(body.grant_types),
        token_format=body.token_format,
        access_token_ttl=body.access_token_ttl,
        merchant_id=merchant_id,
        redirect_uris=tuple(body.redirect_uris),
        public=body.public,
        default_scope=body.default_scope,
        require_par=body.require_par,
        require_dpop=body.require_dpop,
        jwks=None if body.jwks is None else json.dumps(body.jwks),
        jwks_uri=body.jwks_uri,
    )
    client, secret = await call.ctx.client_admin.create(spec, by=call.by)
    out = ClientCreated(**client_fields(client, call.ctx.clock.now()), client_secret=secret)
    return Result(out, 201, client.client_id, merchant_id, {"scope": " ".join(client.scopes)})


async def get_client(call: Call) -> Result:
    return Result(client_out(call, await _client(call)))


async def update_client(call: Call) -> Result:
    client = await _client(call)
    body = _as(ClientUpdate, call.body)
    _check_admin_scopes(call, body.scope)
    changes = ClientChanges(
        name=body.name,
        scope=body.scope,
        access_token_ttl=body.access_token_ttl,
        redirect_uris=None if body.redirect_uris is None else tuple(body.redirect_uris),
        grant_types=None if body.grant_types is None else tuple(body.grant_types),
        token_format=body.token_format,
    )
    changed = await call.ctx.client_admin.change(client.client_id, changes, by=call.by)
    fields = ",".join(sorted(changes.given()))
    return Result(
        client_out(call, changed), 200, client.client_id, client.merchant_id, {"fields": fields}
    )


async def delete_client(call: Call) -> Result:
    client = await _client(call)
    await call.ctx.client_admin.delete(client.client_id, by=call.by)
    return Result(None, 204, client.client_id, client.merchant_id)


async def disable_client(call: Call) -> Result:
    client = await call.ctx.client_admin.disable((await _client(call)).client_id)
    return Result(client_out(call, client), 200, client.client_id, client.merchant_id)


async def enable_client(call: Call) -> Result:
    client = await call.ctx.client_admin.enable((await _client(call)).client_id)
    return Result(client_out(call, client), 200, client.client_id, client.merchant_id)


async def rotate_secret(call: Call) -> Result:
    client = await _client(call)
    keep = _as(SecretRotate, call.body).keep_old_for
    secret = await call.ctx.client_admin.rotate_secret(client.client_id, keep, by=call.by)
    out = SecretRotated(
        client_id=client.client_id,
        client_secret=secret,
        old_secrets_expire_at=iso(call.ctx.clock.now() + keep) or "",
    )
    return Result(out, 200, client.client_id, client.merchant_id, {"keep_old_for": keep})


async def register_keys(call: Call) -> Result:
    client = await _client(call)
    body = _as(ClientKeys, call.body)
    changed = await call.ctx.client_admin.set_keys(
        client.client_id,
        jwks=None if body.jwks is None else json.dumps(body.jwks),
        jwks_uri=body.jwks_uri,
        keys_only=True,
        by=call.by,
    )
    how = "jwks" if body.jwks is not None else "jwks_uri"
    return Result(
        client_out(call, changed), 200, client.client_id, client.merchant_id, {"keys": how}
    )


# -- tokens --------------------------------------------------------------------------------


async def revoke_client_tokens(call: Call) -> Result:
    client = await _client(call)
    done = await call.ctx.admin_api.revocations.of_client(client)
    out = TokensRevoked(
        revoked_before=iso(call.ctx.clock.now()) or "", clients=done.clients, families=done.families
    )
    return Result(out, 200, client.client_id, client.merchant_id)


async def revoke_merchant_tokens(call: Call) -> Result:
    merchant = await _merchant(call, call.params["merchant_id"])
    done = await call.ctx.admin_api.revocations.of_merchant(merchant.merchant_id)
    out = TokensRevoked(
        revoked_before=iso(call.ctx.clock.now()) or "", clients=done.clients, families=done.families
    )
    details = {"clients": done.clients, "families": done.families}
    return Result(out, 200, merchant.merchant_id, merchant.merchant_id, details)


# -- developer API keys --------------------------------------------------------------------


def api_key_fields(k: ApiKey) -> dict[str, Any]:
    return {
        "key_id": k.key_id,
        "name": k.name,
        "merchant_id": k.merchant_id,
        "status": "active" if k.revoked_at is None else "revoked",
        "created_at": iso(k.created_at) or "",
        "revoked_at": iso(k.revoked_at),
    }


async def _api_key(call: Call) -> ApiKey:
    key_id = call.params["key_id"]
    everyone = await call.ctx.api_key_admin.listing(call.principal.merchant_id)
    key = next((k for k in everyone if k.key_id == key_id), None)
    if key is None:
        raise not_found(f"API key {key_id!r}")
    return key


async def list_api_keys(call: Call) -> Result:
    keys = await call.ctx.api_key_admin.listing(_scope_of(call))
    page = _page(
        call, keys, lambda k: (k.created_at, k.key_id), lambda k: search_text(k.key_id, k.name)
    )
    items = [ApiKeyOut(**api_key_fields(k)) for k in page.items]
    return Result(ApiKeyPage(items=items, next_cursor=page.next_cursor))


async def create_api_key(call: Call) -> Result:
    body = _as(ApiKeyCreate, call.body)
    merchant_id = call.principal.merchant_id or body.merchant_id
    if body.merchant_id not in (None, merchant_id):
        raise not_found(f"merchant {body.merchant_id!r}")
    if merchant_id is not None and await call.ctx.merchants.get(merchant_id) is None:
        raise not_found(f"merchant {merchant_id!r}")
    key, plain = await call.ctx.api_key_admin.create(body.name, merchant_id, by=call.by)
    out = ApiKeyCreated(**api_key_fields(key), key=plain)
    return Result(out, 201, key.key_id, merchant_id)


async def rotate_api_key(call: Call) -> Result:
    key = await _api_key(call)
    if key.revoked_at is not None:
        raise Failure(409, "conflict", f"API key {key.key_id!r} is revoked")
    plain = await call.ctx.api_key_admin.rotate(key.key_id, by=call.by)
    return Result(ApiKeyCreated(**api_key_fields(key), key=plain), 200, key.key_id, key.merchant_id)


async def revoke_api_key(call: Call) -> Result:
    key = await _api_key(call)
    await call.ctx.api_key_admin.revoke(key.key_id, by=call.by)
    return Result(None, 204, key.key_id, key.merchant_id)


# -- signing keys --------------------------------------------------------------------------


def signing_key_out(r: SigningKeyRecord, status: Any) -> SigningKeyOut:
    return SigningKeyOut(
        kid=r.kid,
        alg=r.alg,
        status=status,
        created_at=iso(r.created_at) or "",
        retired_at=iso(r.retired_at),
        publish_until=iso(r.publish_until),
        public_jwk=json.loads(r.public_jwk),
    )


async def list_signing_keys(call: Call) -> Result:
    records = await call.ctx.service.keyring.records()
    items = [signing_key_out(r, s) for r, s in records]
    return Result(SigningKeyPage(items=items, next_cursor=None))


async def rotate_signing_key(call: Call) -> Result:
    body = _as(KeyRotate, call.body)
    settings = call.ctx.settings
    record = await call.ctx.service.keyring.rotate(
        body.alg or settings.signing_alg,
        settings.max_access_token_ttl,
        activate_after=body.activate_after,
    )
    status = "signing" if body.activate_after == 0 else "next"
    return Result(signing_key_out(record, status), 201, record.kid, None, {"alg": record.alg})


async def retire_signing_key(call: Call) -> Result:
    kid = call.params["kid"]
    try:
        record = await call.ctx.service.keyring.retire(kid)
    except ValueError as exc:
        raise Failure(409, "conflict", str(exc)) from None
    if record is None:
        raise not_found(f"signing key {kid!r}")
    now = call.ctx.clock.now()
    until = record.publish_until if record.publish_until is not None else now
    out = signing_key_out(record, "expired").model_copy(
        update={"publish_until": iso(min(until, now))}
    )
    return Result(out, 200, kid, None)


# -- authorizations ------------------------------------------------------------------------


def app_out(app: AuthorizedApp) -> AuthorizedAppOut:
    return AuthorizedAppOut(
        client_id=app.client_id,
        name=app.name,
        scopes=app.scopes,
        users=sorted(app.users),
        remembered=app.remembered,
        live_grants=app.live_grants,
        first_at=iso(app.first_at or None),
        last_at=iso(app.last_at or None),
    )


async def list_authorized_apps(call: Call) -> Result:
    merchant = await _merchant(call, call.params["merchant_id"])
    apps = await call.ctx.authorizations.of_merchant(merchant.merchant_id)
    items = [app_out(a) for a in sorted(apps.values(), key=lambda a: a.client_id)]
    return Result(AuthorizedAppPage(items=items, next_cursor=None))


async def withdraw_app(call: Call) -> Result:
    merchant = await _merchant(call, call.params["merchant_id"])
    client_id = call.params["client_id"]
    done = await call.ctx.authorizations.withdraw(
        Grantor(merchant_id=merchant.merchant_id), client_id, by=call.by
    )
    if not done:
        raise not_found(f"authorization of {client_id!r}")
    out = Withdrawn(client_id=client_id, consents=done.consents, families=done.families)
    return Result(out, 200, client_id, merchant.merchant_id, {"families": done.families})


async def list_user_consents(call: Call) -> Result:
    merchant_id, user_id = call.params["merchant_id"], call.params["user_id"]
    call.merchant_in_reach(merchant_id, "user")
    apps = await call.ctx.authorizations.of_member(merchant_id, user_id)
    if apps is None:
        raise not_found(f"user {user_id!r}")
    return Result(AuthorizedAppPage(items=[app_out(a) for a in apps], next_cursor=None))


async def withdraw_user_consent(call: Call) -> Result:
    merchant_id, user_id = call.params["merchant_id"], call.params["user_id"]
    client_id = call.params["client_id"]
    call.merchant_in_reach(merchant_id, "user")
    done = await call.ctx.authorizations.withdraw_member(
        merchant_id, user_id, client_id, by=call.by
    )
    if done is None:
        raise not_found(f"user {user_id!r}")
    if not done:
        raise not_found(f"consent to {client_id!r}")
    out = Withdrawn(client_id=client_id, consents=done.consents, families=done.families)
    return Result(out, 200, client_id, merchant_id, {"user": user_id})


# -- consent resources ---------------------------------------------------------------------


def consent_out(c: ConsentResource, now: float) -> ConsentOut:
    return ConsentOut(
        consent_id=c.consent_id,
        status=c.status_at(now),  # type: ignore[arg-type]
        client_id=c.client_id,
        authorization_details=load(c.authorization_details),
        created_at=iso(c.created_at) or "",
        expires_at=iso(c.expires_at) or "",
        status_updated_at=iso(c.status_updated_at) or "",
        user_id=c.user_id,
        merchant_id=c.merchant_id,
        approved_at=iso(c.approved_at),
    )


async def _consent(call: Call) -> ConsentResource:
    consent_id = call.params["consent_id"]
    consent = await call.ctx.consents.get(consent_id)
    if consent is None or not call.principal.sees(consent.merchant_id):
        raise not_found(f"consent {consent_id!r}")
    return consent


async def list_consents(call: Call) -> Result:
    """Consent resources, oldest first; a merchant's client sees those its merchant's
    users decided."""
    q = _as(ConsentQuery, call.query)
    found = await call.ctx.consents.listing(
        client_id=q.client_id, merchant_id=_scope_of(call), status=q.status
    )
    page = _page(
        call,
        found,
        lambda c: (c.created_at, c.consent_id),
        lambda c: search_text(c.consent_id, c.client_id),
    )
    now = call.ctx.clock.now()
    items = [consent_out(c, now) for c in page.items]
    return Result(ConsentPage(items=items, next_cursor=page.next_cursor))


async def get_consent(call: Call) -> Result:
    return Result(consent_out(await _consent(call), call.ctx.clock.now()))


async def revoke_consent(call: Call) -> Result:
    """Revoke a consent resource and its tokens (its token family, RFC 7009 §2.1)."""
    consent = await _consent(call)
    try:
        done = await call.ctx.consents.revoke(consent.consent_id, by=By(call.principal.actor))
    except ConsentNotActive as exc:
        raise Failure(409, "conflict", exc.description) from None
    if done is None:
        raise not_found(f"consent {consent.consent_id!r}")
    out = consent_out(done, call.ctx.clock.now())
    return Result(out, 200, done.consent_id, done.merchant_id, {"client_id": done.client_id})


# -- audit events --------------------------------------------------------------------------


async def list_audit_events(call: Call) -> Result:
    """The audit trail (docs/audit.md), newest first; a merchant's client sees its
    merchant's events only."""
    q = _as(AuditQueryIn, call.query)
    merchant_id = q.merchant_id
    if call.principal.merchant_id is not None:
        call.merchant_in_reach(merchant_id or call.principal.merchant_id, "events")
        merchant_id = call.principal.merchant_id
    after = AuditCursor.decode(q.cursor) if q.cursor else None
    if q.cursor and after is None:
        raise Failure(422, "validation_failed", "cursor is not one this API returned")
    query = AuditQuery(
        merchant_id=merchant_id, actor=q.actor, type=q.type, after=after, limit=q.limit
    )
    events, following = await call.ctx.audit.page(query)
    items = [audit_event_out(e) for e in events]
    next_cursor = following.encode() if following is not None else None
    return Result(AuditEventPage(items=items, next_cursor=next_cursor))


def audit_event_out(e: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=e.id,
        at=iso(e.at) or "",
        type=e.type,
        actor=e.actor,
        outcome=e.outcome,
        merchant_id=e.merchant_id,
        source=e.source,
        subject=e.subject,
        details=dict(e.details),
    )


# -- the table -----------------------------------------------------------------------------

_M, _U, _C, _K, _T, _A, _E = (
    "admin:merchants",
    "admin:users",
    "admin:clients",
    "admin:keys",
    "admin:tokens",
    "admin:consents",
    "admin:audit",
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/audit-events",
        "listAuditEvents",
        "List audit events, newest first (docs/audit.md)",
        _E,
        list_audit_events,
        "audit",
        AuditEventPage,
        query=AuditQueryIn,
    ),
    Operation(
        "GET",
        "/merchants",
        "listMerchants",
        "List merchants",
        _M,
        list_merchants,
        "merchants",
        MerchantPage,
        query=ListQuery,
    ),
    Operation(
        "POST",
        "/merchants",
        "createMerchant",
        "Create a merchant",
        _M,
        create_merchant,
        "merchants",
        MerchantOut,
        201,
        MerchantCreate,
        errors=(409,),
        event="admin.merchants.create",
        platform_only=True,
    ),
    Operation(
        "GET",
        "/merchants/{merchant_id}",
        "getMerchant",
        "Get a merchant",
        _M,
        get_merchant,
        "merchants",
        MerchantOut,
        errors=(404,),
    ),
    Operation(
        "POST",
        "/merchants/{merchant_id}/disable",
        "disableMerchant",
        "Disable a merchant: its users cannot log in, its refresh tokens stop working",
        _M,
        disable_merchant,
        "merchants",
        MerchantOut,
        errors=(404,),
        event="admin.merchants.disable",
        platform_only=True,
    ),
    Operation(
        "GET",
        "/merchants/{merchant_id}/users",
        "listUsers",
        "List a merchant's users",
        _U,
        list_users,
        "users",
        UserPage,
        query=ListQuery,
        errors=(404,),
    ),
    Operation(
        "POST",
        "/merchants/{merchant_id}/users",
        "createUser",
        "Create a user of a merchant",
        _U,
        create_user,
        "users",
        UserOut,
        201,
        UserCreate,
        errors=(404, 409),
        event="admin.users.create",
    ),
    Operation(
        "GET",
        "/merchants/{merchant_id}/users/{user_id}",
        "getUser",
        "Get a user",
        _U,
        get_user,
        "users",
        UserOut,
        errors=(404,),
    ),
    Operation(
        "POST",
        "/merchants/{merchant_id}/users/{user_id}/disable",
        "disableUser",
        "Disable a user and end their sessions",
        _U,
        disable_user,
        "users",
        UserOut,
        errors=(404,),
        event="admin.users.disable",
    ),
    Operation(
        "GET",
        "/clients",
        "listClients",
        "List clients (paged, searchable)",
        _C,
        list_clients,
        "clients",
        ClientPage,
        query=ListQuery,
        errors=(404,),
    ),
    Operation(
        "POST",
        "/clients",
        "createClient",
        "Create a client; its secret is in this answer only",
        _C,
        create_client,
        "clients",
        ClientCreated,
        201,
        ClientCreate,
        errors=(404,),
        event="admin.clients.create",
    ),
    Operation(
        "GET",
        "/clients/{client_id}",
        "getClient",
        "Get a client",
        _C,
        get_client,
        "clients",
        ClientOut,
        errors=(404,),
    ),
    Operation(
        "PATCH",
        "/clients/{client_id}",
        "updateClient",
        "Change a client",
        _C,
        update_client,
        "clients",
        ClientOut,
        body=ClientUpdate,
        errors=(404, 409),
        event="admin.clients.update",
    ),
    Operation(
        "DELETE",
        "/clients/{client_id}",
        "deleteClient",
        "Delete a client with its secrets, tokens and consents",
        _C,
        delete_client,
        "clients",
        None,
        204,
        errors=(404,),
        event="admin.clients.delete",
    ),
    Operation(
        "POST",
        "/clients/{client_id}/disable",
        "disableClient",
        "Disable a client (reversible): token requests fail, tokens are inactive",
        _C,
        disable_client,
        "clients",
        ClientOut,
        errors=(404,),
        event="admin.clients.disable",
    ),
    Operation(
        "POST",
        "/clients/{client_id}/enable",
        "enableClient",
        "Enable a disabled client",
        _C,
        enable_client,
        "clients",
        ClientOut,
        errors=(404,),
        event="admin.clients.enable",
    ),
    Operation(
        "POST",
        "/clients/{client_id}/secret",
        "rotateClientSecret",
        "Rotate a client's secret; the new one is in this answer only",
        _C,
        rotate_secret,
        "clients",
        SecretRotated,
        body=SecretRotate,
        errors=(404,),
        event="admin.clients.rotate_secret",
    ),
    Operation(
        "PUT",
        "/clients/{client_id}/keys",
        "registerClientKeys",
        "Register the client's public keys (jwks or jwks_uri) for private_key_jwt",
        _C,
        register_keys,
        "clients",
        ClientOut,
        body=ClientKeys,
        errors=(404, 409),
        event="admin.clients.register_keys",
    ),
    Operation(
        "POST",
        "/clients/{client_id}/revoke-tokens",
        "revokeClientTokens",
        "Revoke every token issued to a client until now",
        _T,
        revoke_client_tokens,
        "tokens",
        TokensRevoked,
        errors=(404,),
        event="admin.tokens.revoke_client",
    ),
    Operation(
        "POST",
        "/merchants/{merchant_id}/revoke-tokens",
        "revokeMerchantTokens",
        "Revoke every token of a merchant's clients and of the apps its users authorized",
        _T,
        revoke_merchant_tokens,
        "tokens",
        TokensRevoked,
        errors=(404,),
        event="admin.tokens.revoke_merchant",
    ),
    Operation(
        "GET",
        "/api-keys",
        "listApiKeys",
        "List developer API keys",
        _K,
        list_api_keys,
        "api-keys",
        ApiKeyPage,
        query=ListQuery,
        errors=(404,),
    ),
    Operation(
        "POST",
        "/api-keys",
        "createApiKey",
        "Create a developer API key; its value is in this answer only",
        _K,
        create_api_key,
        "api-keys",
        ApiKeyCreated,
        201,
        ApiKeyCreate,
        errors=(404,),
        event="admin.api_keys.create",
    ),
    Operation(
        "POST",
        "/api-keys/{key_id}/rotate",
        "rotateApiKey",
        "Give an API key a new value (in this answer only)",
        _K,
        rotate_api_key,
        "api-keys",
        ApiKeyCreated,
        errors=(404, 409),
        event="admin.api_keys.rotate",
    ),
    Operation(
        "DELETE",
        "/api-keys/{key_id}",
        "revokeApiKey",
        "Revoke an API key",
        _K,
        revoke_api_key,
        "api-keys",
        None,
        204,
        errors=(404,),
        event="admin.api_keys.revoke",
    ),
    Operation(
        "GET",
        "/signing-keys",
        "listSigningKeys",
        "List the signing keys (public parts)",
        _K,
        list_signing_keys,
        "signing-keys",
        SigningKeyPage,
        platform_only=True,
    ),
    Operation(
        "POST",
        "/signing-keys/rotate",
        "rotateSigningKey",
        "Add a signing key that signs now or after activate_after seconds",
        _K,
        rotate_signing_key,
        "signing-keys",
        SigningKeyOut,
        201,
        KeyRotate,
        event="admin.keys.rotate",
        platform_only=True,
    ),
    Operation(
        "POST",
        "/signing-keys/{kid}/retire",
        "retireSigningKey",
        "Stop publishing a key that signs no more",
        _K,
        retire_signing_key,
        "signing-keys",
        SigningKeyOut,
        errors=(404, 409),
        event="admin.keys.retire",
        platform_only=True,
    ),
    Operation(
        "GET",
        "/merchants/{merchant_id}/authorized-apps",
        "listAuthorizedApps",
        "The partner apps a merchant's users authorized",
        _A,
        list_authorized_apps,
        "consents",
        AuthorizedAppPage,
        errors=(404,),
    ),
    Operation(
        "DELETE",
        "/merchants/{merchant_id}/authorized-apps/{client_id}",
        "withdrawAuthorizedApp",
        "Withdraw an app's authorization for every user of the merchant",
        _A,
        withdraw_app,
        "consents",
        Withdrawn,
        errors=(404,),
        event="admin.consents.withdraw_merchant",
    ),
    Operation(
        "GET",
        "/merchants/{merchant_id}/users/{user_id}/consents",
        "listUserConsents",
        "A user's remembered consents",
        _A,
        list_user_consents,
        "consents",
        AuthorizedAppPage,
        errors=(404,),
    ),
    Operation(
        "DELETE",
        "/merchants/{merchant_id}/users/{user_id}/consents/{client_id}",
        "withdrawUserConsent",
        "Withdraw a user's consent to an app and its tokens",
        _A,
        withdraw_user_consent,
        "consents",
        Withdrawn,
        errors=(404,),
        event="admin.consents.withdraw_user",
    ),
    Operation(
        "GET",
        "/consents",
        "listConsents",
        "Consent resources lodged by partners, by status, client or deciding merchant",
        _A,
        list_consents,
        "consents",
        ConsentPage,
        query=ConsentQuery,
        errors=(404,),
    ),
    Operation(
        "GET",
        "/consents/{consent_id}",
        "getConsent",
        "A consent resource and its current status",
        _A,
        get_consent,
        "consents",
        ConsentOut,
        errors=(404,),
    ),
    Operation(
        "POST",
        "/consents/{consent_id}/revoke",
        "revokeConsent",
        "Revoke a consent resource and the tokens it gave",
        _A,
        revoke_consent,
        "consents",
        ConsentOut,
        errors=(404, 409),
        event="admin.consents.revoke",
    ),
)
