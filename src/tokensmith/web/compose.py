"""The composition root: :func:`build_context` is the one place that knows every concrete
class and wires settings, storage, the core's services and the web layer's into one frozen
:class:`~tokensmith.web.context.AppContext`.

Each factory below builds one service from what it needs and nothing else; the graph is
complete when :func:`build_context` returns, and no one adds to it afterwards.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tokensmith.core.accounts import LoginLimits, LoginService
from tokensmith.core.activity import Activity, ActivityFlusher, ActivityRecorder, RetentionPolicy
from tokensmith.core.addresses import is_loopback_url
from tokensmith.core.admin_api import AdminAccess, AdminApiServices, TokenRevocations
from tokensmith.core.audit import Audit
from tokensmith.core.authn import ClientAuthenticator, FailureLimits
from tokensmith.core.authorization_details import (
    DEFAULT_TYPES,
    DetailsTypes,
    schemas_of_file,
    schemas_of_store,
)
from tokensmith.core.authorizations import Authorizations
from tokensmith.core.client_admin import ApiKeys, ClientAdmin
from tokensmith.core.client_assertion import (
    HMAC_ALGORITHMS,
    AssertionPolicy,
    AssertionVerifier,
    ClientKeys,
    parse_jwks,
)
from tokensmith.core.clock import Clock, SystemClock
from tokensmith.core.consent_resources import ConsentPolicy, ConsentResources
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
from tokensmith.core.mtls import MTLS_METHODS
from tokensmith.core.panel_models import DAY
from tokensmith.core.par import ParPolicy, PushedRequests
from tokensmith.core.passwords import Passwords
from tokensmith.core.ports import ReplayCache, Store
from tokensmith.core.profile import FAPI2, ProfilePolicy, advertised_auth_methods
from tokensmith.core.randomness import Randomness, SystemRandomness
from tokensmith.core.registration import (
    InitialTokens,
    RegistrationPolicy,
    Registrations,
)
from tokensmith.core.resources import ResourceRegistry
from tokensmith.core.reveals import Reveals
from tokensmith.core.service import TokenService
from tokensmith.core.sessions import Sessions
from tokensmith.core.tokens import IssuePolicy, TokenMinter
from tokensmith.settings import ConfigError, Settings, secret_key_weakness
from tokensmith.storage.cache import CachingClientStore, CachingResourceStore, ReadThrough
from tokensmith.storage.health import StoreHealth
from tokensmith.storage.ratelimit import MemoryLimiter, RedisLimiter
from tokensmith.storage.replay import MemoryReplayCache, RedisReplayCache
from tokensmith.storage.revocations import RevocationView
from tokensmith.storage.sql import SqlStore, make_engine, migrate
from tokensmith.storage.sql.replay import SqlReplayCache
from tokensmith.web.context import AppContext
from tokensmith.web.dialects.compat import dialects
from tokensmith.web.endpoints.registration import REGISTER_PATH
from tokensmith.web.jwks_fetch import HttpJwksFetcher
from tokensmith.web.observe import Observer
from tokensmith.web.panel.format import install_filters
from tokensmith.web.panel.services import PanelServices
from tokensmith.web.ui import UiServices
from tokensmith.web.ui.pages import make_environment
from tokensmith.web.ui.sessions import SessionCookie

__all__ = [
    "audit_of",
    "build_context",
    "grant_table",
    "observer_class",
    "partner_policy",
    "probe_health",
    "registration_policy",
    "resolve_secret_keys",
]

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
    audit = audit_of(settings, store, clock, rand)
    clients = CachingClientStore(store, clock, settings.client_cache_ttl)
    keyring = KeyRing(
        store,
        KeySealer(secret_keys),
        clock,
        rand,
        settings.issuer_url,
        settings.key_reload_interval,
        audit,
    )
    await keyring.ensure(settings.signing_alg)
    partner = partner_policy(settings)
    replays = replay_cache(settings, store, clock, redis)
    dpop = dpop_verifier(settings, clock, replays, secret_keys[0])
    secret_sealer = KeySealer(secret_keys, CLIENT_SECRETS)
    assertions = assertion_verifier(settings, clock, replays, secret_sealer)
    details = await details_types(settings, store)
    consents = ConsentResources(
        store,
        store,
        clock,
        rand,
        details,
        ConsentPolicy(settings.consent_lifetime, partner.code_ttl + partner.refresh_absolute_ttl),
        audit,
    )
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
        details,
        audit,
        consents,
    )
    recorder = ActivityRecorder(clock)
    activity = Activity(store, recorder)
    api_keys = ReadThrough(store.find_api_key, clock, settings.client_cache_ttl)
    standard = IssuePolicy(settings.default_token_format, settings.access_token_ttl)
    client_admin = ClientAdmin(
        store,
        clock,
        rand,
        max_ttl=settings.max_access_token_ttl,
        usage=activity,
        invalidate=clients.invalidate,
        audit=audit,
        forget_keys=assertions.forget,
        loopback_jwks=is_loopback_url(settings.issuer_url),
        seal=sealing(secret_sealer),
    )
    authorizations = Authorizations(
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
        audit,
        consents,
    )
    registrations = Registrations(
        client_admin,
        InitialTokens(store, clock, rand),
        clock,
        rand,
        registration_policy(settings),
        audit,
        limiter,
        fingerprints,
    )
    return AppContext(
        settings=settings,
        clock=clock,
        rand=rand,
        service=service,
        clients=clients,
        api_keys=api_keys,
        observer=observer_class(settings)(recorder=recorder, fingerprints=fingerprints),
        dialects=dialects(standard),
        metadata=authorization_metadata(settings, details),
        sessions=Sessions(
            store,
            store,
            store,
            clock,
            rand,
            idle_ttl=settings.session_idle_ttl,
            absolute_ttl=settings.session_absolute_ttl,
            audit=audit,
        ),
        authorizations=authorizations,
        merchants=Merchants(store, clock, rand, audit),
        users=Users(store, store, store, passwords, clock, rand, audit),
        client_admin=client_admin,
        api_key_admin=ApiKeys(store, clock, rand, api_keys.invalidate, audit),
        activity=activity,
        reveals=Reveals(store, clock, rand),
        audit=audit,
        registrations=registrations,
        par=_pushed_requests(
            settings, store, clients, service, partner, clock, rand, details, consents
        ),
        consents=consents,
        admin_api=AdminApiServices(
            AdminAccess(service, clients, dpop),
            TokenRevocations(client_admin, authorizations),
        ),
        ui=_ui_services(settings, store, limiter, fingerprints, partner, passwords, audit),
        panel=_panel_services(settings, store, clients, clock, recorder),
        details=details,
        health=StoreHealth(store),
        store=store,
        redis=redis,
    )


def observer_class(settings: Settings) -> type[Observer]:
    """:class:`Observer`, or with traces on (``settings.otel`` and opentelemetry installed)
    one that also names the grant on the request's span: chosen once, here."""
    if settings.otel:
        try:
            from tokensmith.web.tracing import TracedObserver
        except ImportError:
            return Observer  # create_app said so in the log
        return TracedObserver
    return Observer


def audit_of(settings: Settings, store: Store, clock: Clock, rand: Randomness) -> Audit:
    """Audit events in the store; each also queued for the webhook if one is set."""
    return Audit(
        store, clock, rand, reader=store, outbox=store, deliver=bool(settings.audit_webhook_url)
    )


async def open_store(settings: Settings) -> SqlStore:
    """The SQL store at ``database_url``, migrated first if ``auto_migrate``."""
    engine = make_engine(settings.database_url, settings.database_pool_size)
    if settings.auto_migrate:
        await migrate(engine)
    return SqlStore(engine)


def probe_health(settings: Settings) -> tuple[StoreHealth, Callable[[], Awaitable[None]]]:
    """The readiness of the database for the metrics port's ``/readyz`` (one connection of
    its own, no migration), and how to close it."""
    store = SqlStore(make_engine(settings.database_url, 1))
    return StoreHealth(store), store.close


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
    details: DetailsTypes,
    audit: Audit,
    consents: ConsentResources | None = None,
) -> TokenService:
    limits = FailureLimits(
        Limit(settings.failures_per_client, settings.failure_window),
        Limit(settings.failures_per_address, settings.failure_window),
    )
    authenticator = ClientAuthenticator(
        clients, clock, limiter, limits, fingerprints, assertions, ProfilePolicy(settings.profile)
    )
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
    # RFC 8707: resources read through a cache like clients, none per request
    cached = CachingResourceStore(store, clock, settings.client_cache_ttl)
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
        details=details,
        resources=ResourceRegistry(cached, cached.aclose),
        audit=audit,
        consents=consents,
    )


def _pushed_requests(
    settings: Settings,
    store: Store,
    clients: CachingClientStore,
    service: TokenService,
    partner: PartnerPolicy,
    clock: Clock,
    rand: Randomness,
    details: DetailsTypes = DEFAULT_TYPES,
    consents: ConsentResources | None = None,
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
        details,
        service.resources,
        profiles=service.profiles,
        dpop=service.dpop,
        consents=consents,
    )


async def details_types(settings: Settings, store: Store) -> DetailsTypes:
    """RFC 9396 ``authorization_details`` types: the built-in ones, the configured file's,
    then those registered with the CLI (``tokensmith authorization-details types add``),
    read at start and re-read every ``authorization_details_types_refresh`` seconds
    (:class:`~tokensmith.web.jobs.BackgroundJobs`)."""
    try:
        layers = []
        if settings.authorization_details_types:
            layers.append(schemas_of_file(settings.authorization_details_types))
        types = DetailsTypes.of(
            *layers,
            max_entries=settings.authorization_details_max_entries,
            max_bytes=settings.authorization_details_max_bytes,
        )
        types.register(schemas_of_store(await store.list_details_types()))
    except ValueError as exc:
        raise ConfigError(f"authorization_details types: {exc}") from None
    return types


def registration_policy(settings: Settings) -> RegistrationPolicy:
    """Who may register clients (RFC 7591), and the software statements trusted."""
    keys = statement_keys(settings.registration_software_statement_jwks)
    if settings.registration_require_software_statement and not keys:
        raise ConfigError(
            "registration_require_software_statement needs "
            "registration_software_statement_jwks: no statement could be trusted"
        )
    return RegistrationPolicy(
        mode=settings.registration,
        scopes=settings.registration_scopes,
        statement_keys=keys,
        require_statement=settings.registration_require_software_statement,
        per_address=settings.registrations_per_address,
    )


def statement_keys(value: str) -> tuple[dict[str, Any], ...]:
    """The trusted software statement keys: a JWK Set as JSON, or a file holding one."""
    if not value.strip():
        return ()
    try:
        text = value if value.lstrip().startswith("{") else Path(value).read_text()
        return tuple(parse_jwks(text))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"registration_software_statement_jwks: {exc}") from None


def authorization_metadata(
    settings: Settings, details: DetailsTypes = DEFAULT_TYPES
) -> dict[str, Any]:
    """RFC 8414 §2 fields of the authorization-code flow, with RFC 9126 §5's and RFC 9449
    §5.1's, the algorithms of ``private_key_jwt`` assertions (RFC 8414 §2), RFC 8705 §3.3's,
    RFC 9396 §10's ``authorization_details_types_supported``, and the
    ``registration_endpoint`` when registration is on (RFC 7591 §3); under the FAPI 2.0
    profile, PAR required and only the methods it allows."""
    algs: list[str] = list(settings.client_assertion_signing_algs)
    fapi2 = settings.profile == FAPI2
    if settings.client_secret_jwt and not fapi2:  # RFC 8414 §2: advertised only when accepted
        algs += HMAC_ALGS
    extra: dict[str, Any] = {}
    if settings.registration != "off":
        extra["registration_endpoint"] = settings.issuer_url + REGISTER_PATH
    return (
        extra
        | {
            "authorization_details_types_supported": details.supported,
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "introspection_endpoint_auth_signing_alg_values_supported": algs,
            "revocation_endpoint_auth_signing_alg_values_supported": algs,
            "dpop_signing_alg_values_supported": list(settings.dpop_signing_algs),
            "authorization_endpoint": settings.issuer_url + "/oauth/authorize",
            "pushed_authorization_request_endpoint": settings.issuer_url + "/oauth/par",
            "require_pushed_authorization_requests": (
                settings.require_pushed_authorization_requests or fapi2
            ),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "token_endpoint_auth_methods_supported": advertised_auth_methods(
                settings.profile,
                public=True,
                mtls=mtls_methods(settings),
                secret_jwt=settings.client_secret_jwt,
            ),
        }
        | mtls_metadata(settings)
    )


def mtls_methods(settings: Settings) -> tuple[str, ...]:
    """RFC 8705 §2's methods, offered when a trusted proxy can forward certificates."""
    return MTLS_METHODS if settings.trusted_proxies else ()


def mtls_metadata(settings: Settings) -> dict[str, Any]:
    """RFC 8705 §3.3 ``tls_client_certificate_bound_access_tokens``, when a trusted proxy
    can forward certificates. No ``mtls_endpoint_aliases`` (§5): the endpoints are the
    same whether the proxy asked for a certificate or not."""
    if not settings.trusted_proxies:
        return {}
    return {"tls_client_certificate_bound_access_tokens": True}


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
    audit: Audit,
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
    login = LoginService(store, store, passwords, limiter, limits, fingerprints, audit)
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
