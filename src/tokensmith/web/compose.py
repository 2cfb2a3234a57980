"""The composition root: :func:`build_context` is the one place that knows every concrete
class and wires settings, storage, the core's services and the web layer's into one frozen
:class:`~tokensmith.web.context.AppContext`.

Each factory below builds one service from what it needs and nothing else; the graph is
complete when :func:`build_context` returns, and no one adds to it afterwards.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tokensmith.core.accounts import LoginLimits, LoginService
from tokensmith.core.activity import Activity, ActivityFlusher, ActivityRecorder, RetentionPolicy
from tokensmith.core.addresses import is_loopback_url
from tokensmith.core.audit import Audit, MemoryAuditTrail
from tokensmith.core.authn import ClientAuthenticator, FailureLimits
from tokensmith.core.authorizations import Authorizations
from tokensmith.core.client_admin import ApiKeys, ClientAdmin
from tokensmith.core.client_assertion import (
    HMAC_ALGORITHMS,
    AssertionPolicy,
    AssertionVerifier,
    ClientKeys,
)
from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.credentials import new_secret
from tokensmith.core.directory import Merchants, Users
from tokensmith.core.dpop import DpopNonces, DpopPolicy, DpopVerifier
from tokensmith.core.families import PartnerPolicy, RefreshTokens
from tokensmith.core.fingerprints import Fingerprints
from tokensmith.core.grants import Grant
from tokensmith.core.grants.authorization_code import AuthorizationCodeGrant
from tokensmith.core.grants.client_credentials import client_credentials
from tokensmith.core.grants.refresh_token import RefreshTokenGrant
from tokensmith.core.keyring import KeyRing
from tokensmith.core.keys import CLIENT_SECRETS, KeyEncryptionError, KeySealer
from tokensmith.core.limits import FailureLimiter, Limit
from tokensmith.core.models import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, REFRESH_TOKEN
from tokensmith.core.panel_models import DAY
from tokensmith.core.par import ParPolicy, PushedRequests
from tokensmith.core.passwords import Passwords
from tokensmith.core.ports import ReplayCache, Store
from tokensmith.core.randomness import Randomness, SystemRandomness
from tokensmith.core.reveals import Reveals
from tokensmith.core.service import TokenService
from tokensmith.core.sessions import Sessions
from tokensmith.core.tokens import IssuePolicy, TokenMinter
from tokensmith.settings import ConfigError, Settings, secret_key_weakness
from tokensmith.storage.cache import CachingClientStore, ReadThrough
from tokensmith.storage.health import StoreHealth
from tokensmith.storage.ratelimit import MemoryLimiter, RedisLimiter
from tokensmith.storage.replay import MemoryReplayCache, RedisReplayCache
from tokensmith.storage.revocations import RevocationView
from tokensmith.storage.sql import SqlStore, make_engine, migrate
from tokensmith.storage.sql.replay import SqlReplayCache
from tokensmith.web.context import AppContext
from tokensmith.web.dialects.compat import dialects
from tokensmith.web.jwks_fetch import HttpJwksFetcher
from tokensmith.web.observe import Observer
from tokensmith.web.panel.format import install_filters
from tokensmith.web.panel.services import PanelServices
from tokensmith.web.ui import UiServices
from tokensmith.web.ui.pages import make_environment
from tokensmith.web.ui.sessions import SessionCookie

__all__ = ["build_context", "grant_table", "partner_policy", "resolve_secret_keys"]

log = logging.getLogger("tokensmith")

#: ``client_secret_jwt``'s algorithms (RFC 7518 §3.2).
HMAC_ALGS: tuple[str, ...] = tuple(HMAC_ALGORITHMS)


async def build_context(
    settings: Settings,
    *,
    clock: Clock | None = None,
    rand: Randomness | None = None,
    store: Store | None = None,
    passwords: Passwords | None = None,
) -> AppContext:
    """The whole object graph. ``clock``, ``rand``, ``store`` and ``passwords`` replace the
    real ones (tests); a store passed in is the caller's to close."""
    clock = clock or SystemClock()
    rand = rand or SystemRandomness()
    passwords = passwords or Passwords()
    store = store or await open_store(settings)
    redis = _redis(settings)
    secret_keys = resolve_secret_keys(settings, rand)
    # from the secret key every instance shares: they then count under the same keys
    fingerprints = Fingerprints.from_secret(secret_keys[0])
    limiter = _limiter(settings, clock, redis)
    clients = CachingClientStore(store, clock, settings.client_cache_ttl)
    keyring = KeyRing(
        store,
        KeySealer(secret_keys),
        clock,
        rand,
        settings.issuer_url,
        settings.key_reload_interval,
    )
    await keyring.ensure(settings.signing_alg)
    partner = partner_policy(settings)
    replays = replay_cache(settings, store, clock, redis)
    dpop = dpop_verifier(settings, clock, replays, secret_keys[0])
    secret_sealer = KeySealer(secret_keys, CLIENT_SECRETS)
    assertions = assertion_verifier(settings, clock, replays, secret_sealer)
    service = _token_service(
        settings,
        store,
        clients,
        keyring,
        limiter,
        fingerprints,
        partner,
        clock,
        rand,
        dpop,
        assertions,
    )
    recorder = ActivityRecorder(clock)
    activity = Activity(store, recorder)
    api_keys = ReadThrough(store.find_api_key, clock, settings.client_cache_ttl)
    standard = IssuePolicy(settings.default_token_format, settings.access_token_ttl)
    return AppContext(
        settings=settings,
        clock=clock,
        rand=rand,
        service=service,
        clients=clients,
        api_keys=api_keys,
        observer=Observer(recorder=recorder, fingerprints=fingerprints),
        dialects=dialects(standard),
        metadata=authorization_metadata(settings),
        sessions=Sessions(
            store,
            store,
            store,
            clock,
            rand,
            idle_ttl=settings.session_idle_ttl,
            absolute_ttl=settings.session_absolute_ttl,
        ),
        authorizations=Authorizations(
            store,
            store,
            store,
            store,
            store,
            clients,
            clock,
            rand,
            partner,
            service.minter.binding.tag,
        ),
        merchants=Merchants(store, clock, rand),
        users=Users(store, store, store, passwords, clock, rand),
        client_admin=ClientAdmin(
            store,
            clock,
            rand,
            max_ttl=settings.max_access_token_ttl,
            usage=activity,
            invalidate=clients.invalidate,
            forget_keys=assertions.forget,
            loopback_jwks=is_loopback_url(settings.issuer_url),
            seal=sealing(secret_sealer),
        ),
        api_key_admin=ApiKeys(store, clock, rand, api_keys.invalidate),
        activity=activity,
        reveals=Reveals(store, clock, rand),
        audit=Audit(MemoryAuditTrail(), clock, rand),
        par=_pushed_requests(settings, store, clients, service, partner, clock, rand),
        ui=_ui_services(settings, store, limiter, fingerprints, partner, passwords),
        panel=_panel_services(settings, store, clients, clock, recorder),
        health=StoreHealth(store),
        store=store,
        redis=redis,
    )


async def open_store(settings: Settings) -> SqlStore:
    """The SQL store at ``database_url``, migrated first if ``auto_migrate``."""
    engine = make_engine(settings.database_url, settings.database_pool_size)
    if settings.auto_migrate:
        await migrate(engine)
    return SqlStore(engine)


def _redis(settings: Settings) -> Any:
    if not settings.redis_url:
        return None
    import redis.asyncio as aioredis

    return aioredis.from_url(settings.redis_url)


def resolve_secret_keys(settings: Settings, rand: Randomness | None = None) -> list[str]:
    """The key-sealing secrets: from settings (checked there), else a file made on first
    start, whose key is checked as strictly."""
    if settings.secret_key:
        return [s.strip() for s in settings.secret_key.split(",") if s.strip()]
    path = Path(settings.secret_key_file)
    if not path.exists():
        secret = new_secret(rand or SystemRandomness())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        log.warning(
            "generated a secret key in %s; set TOKENSMITH_SECRET_KEY when instances share a "
            "database",
            path,
        )
    secret = path.read_text().strip()
    weakness = secret_key_weakness(secret)
    if weakness is not None:
        raise ConfigError(f"the secret key in {path} {weakness}: use a random key")
    return [secret]


def _limiter(settings: Settings, clock: Clock, redis: Any) -> FailureLimiter:
    if redis is None:
        return MemoryLimiter(clock)
    return RedisLimiter(
        redis, prefix=settings.redis_prefix + "fail:", fallback=MemoryLimiter(clock)
    )


def partner_policy(settings: Settings) -> PartnerPolicy:
    """The authorization-code flow's lifetimes and rules."""
    return PartnerPolicy(
        code_ttl=settings.authorization_code_ttl,
        access_token_ttl=settings.partner_access_token_ttl,
        refresh_idle_ttl=settings.refresh_token_idle_ttl,
        refresh_absolute_ttl=settings.refresh_token_absolute_ttl,
        refresh_grace=settings.refresh_grace_seconds,
        require_pkce=settings.require_pkce,
    )


def grant_table(partner: PartnerPolicy | None = None) -> dict[str, Grant]:
    """``grant_type`` -> handler (RFC 6749 §4)."""
    partner = partner or PartnerPolicy()
    return {
        CLIENT_CREDENTIALS: client_credentials,
        AUTHORIZATION_CODE: AuthorizationCodeGrant(partner),
        REFRESH_TOKEN: RefreshTokenGrant(partner),
    }


def replay_cache(settings: Settings, store: Store, clock: Clock, redis: Any) -> ReplayCache:
    """Where the ``jti`` of accepted proofs are kept, so that every instance (and worker)
    refuses a proof another one accepted: Redis if configured, else the store's database,
    else (an in-memory store) memory."""
    if redis is not None:
        return RedisReplayCache(redis, clock, settings.redis_prefix + "replay:")
    if isinstance(store, SqlStore):
        return SqlReplayCache(store.engine, clock, store.write_paths.writer)
    return MemoryReplayCache(clock)


def dpop_verifier(
    settings: Settings, clock: Clock, replays: ReplayCache, secret: str
) -> DpopVerifier:
    """RFC 9449 proof checks; ``secret`` (the server's secret key, shared by every
    instance) keys the nonces."""
    policy = DpopPolicy(
        algorithms=tuple(settings.dpop_signing_algs),
        max_age=settings.dpop_proof_max_age,
        leeway=settings.dpop_proof_leeway,
        require_nonce=settings.dpop_nonce,
    )
    nonces = DpopNonces.from_secret(secret, clock) if settings.dpop_nonce else None
    return DpopVerifier(policy, clock, replays, nonces)


def sealing(sealer: KeySealer) -> Callable[[str], str]:
    """Seals a ``client_secret_jwt`` client's secret as text."""
    return lambda secret: sealer.seal(secret.encode("utf-8")).decode("ascii")


def unsealing(sealer: KeySealer) -> Callable[[str], str | None]:
    """Opens a sealed client secret; ``None`` if no secret key opens it."""

    def unseal(sealed: str) -> str | None:
        try:
            return sealer.open(sealed.encode("ascii")).decode("utf-8")
        except (KeyEncryptionError, UnicodeError):
            return None

    return unseal


def assertion_verifier(
    settings: Settings, clock: Clock, replays: ReplayCache, secrets: KeySealer | None = None
) -> AssertionVerifier:
    """RFC 7523 client assertions (``private_key_jwt``, and ``client_secret_jwt`` when
    enabled, its secrets opened by ``secrets``); their ``jti`` share the replay cache of
    DPoP proofs, under keys of their own."""
    policy = AssertionPolicy(
        algorithms=tuple(settings.client_assertion_signing_algs),
        max_lifetime=settings.client_assertion_max_lifetime,
        cache_ttl=settings.jwks_uri_cache_ttl,
        hmac_algorithms=HMAC_ALGS if settings.client_secret_jwt and secrets else (),
    )
    fetcher = HttpJwksFetcher(allow_loopback=is_loopback_url(settings.issuer_url))
    keys = ClientKeys(fetcher, clock, policy)
    issuer = settings.issuer_url
    audiences = (issuer, issuer + "/oauth/token")
    unseal = unsealing(secrets) if secrets is not None else None
    return AssertionVerifier(policy, clock, replays, keys, audiences, unseal)


def _token_service(
    settings: Settings,
    store: Store,
    clients: CachingClientStore,
    keyring: KeyRing,
    limiter: FailureLimiter,
    fingerprints: Fingerprints,
    partner: PartnerPolicy,
    clock: Clock,
    rand: Randomness,
    dpop: DpopVerifier,
    assertions: AssertionVerifier,
) -> TokenService:
    limits = FailureLimits(
        Limit(settings.failures_per_client, settings.failure_window),
        Limit(settings.failures_per_address, settings.failure_window),
    )
    authenticator = ClientAuthenticator(clients, clock, limiter, limits, fingerprints, assertions)
    minter = TokenMinter(
        keyring,
        store,
        clock,
        rand,
        settings.issuer_url,
        settings.audience_value,
        legacy_issuer=settings.legacy_token_issuer,
    )
    refresh = RefreshTokens(store, clients, clock, minter.binding)
    return TokenService(
        store,
        clients,
        authenticator,
        minter,
        keyring,
        clock,
        rand,
        grant_table(partner),
        revocations=RevocationView(store, clock, settings.revocation_sync_interval),
        introspectors=(refresh.introspect,),
        revokers=(refresh.revoke,),
        dpop=dpop,
    )


def _pushed_requests(
    settings: Settings,
    store: Store,
    clients: CachingClientStore,
    service: TokenService,
    partner: PartnerPolicy,
    clock: Clock,
    rand: Randomness,
) -> PushedRequests:
    """RFC 9126: clients authenticate at the PAR endpoint as at the token endpoint."""
    policy = ParPolicy(settings.par_lifetime, settings.require_pushed_authorization_requests)
    return PushedRequests(
        store,
        clients,
        service.authenticator,
        clock,
        rand,
        partner,
        policy,
        service.minter.binding.tag,
    )


def authorization_metadata(settings: Settings) -> dict[str, Any]:
    """RFC 8414 §2 fields of the authorization-code flow, with RFC 9126 §5's and RFC 9449
    §5.1's, and the algorithms of ``private_key_jwt`` assertions (RFC 8414 §2)."""
    algs: list[str] = list(settings.client_assertion_signing_algs)
    methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
    if settings.client_secret_jwt:  # RFC 8414 §2: advertised only when accepted
        algs += HMAC_ALGS
        methods.append("client_secret_jwt")
    return {
        "introspection_endpoint_auth_methods_supported": list(methods),
        "revocation_endpoint_auth_methods_supported": list(methods),
        "token_endpoint_auth_signing_alg_values_supported": algs,
        "introspection_endpoint_auth_signing_alg_values_supported": algs,
        "revocation_endpoint_auth_signing_alg_values_supported": algs,
        "dpop_signing_alg_values_supported": list(settings.dpop_signing_algs),
        "authorization_endpoint": settings.issuer_url + "/oauth/authorize",
        "pushed_authorization_request_endpoint": settings.issuer_url + "/oauth/par",
        "require_pushed_authorization_requests": settings.require_pushed_authorization_requests,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "token_endpoint_auth_methods_supported": [*methods, "none"],
    }


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _ui_services(
    settings: Settings,
    store: Store,
    limiter: FailureLimiter,
    fingerprints: Fingerprints,
    partner: PartnerPolicy,
    passwords: Passwords,
) -> UiServices:
    s = settings
    cookie = SessionCookie(
        secure=s.issuer_url.startswith("https://"),
        origin=_origin(s.issuer_url),
        max_age=s.session_absolute_ttl,
    )
    limits = LoginLimits(
        Limit(s.login_failures_per_account, s.login_failure_window),
        Limit(s.login_failures_per_address, s.login_failure_window),
    )
    login = LoginService(store, store, passwords, limiter, limits, fingerprints)
    templates = make_environment()
    install_filters(templates)
    return UiServices(cookie, login, templates, partner)


def _panel_services(
    settings: Settings,
    store: Store,
    clients: CachingClientStore,
    clock: Clock,
    recorder: ActivityRecorder,
) -> PanelServices:
    retention = RetentionPolicy(
        stats=settings.activity_retention_days * DAY,
        failures=settings.auth_failure_retention,
        max_failures=settings.auth_failure_max_rows,
    )
    flusher = ActivityFlusher(recorder, store, clients, clock, retention)
    return PanelServices(recorder, flusher, settings.panel_scopes)
