"""Settings: command-line flags, then ``TOKENSMITH_*`` environment, then a TOML file.

The file is named by ``--config`` or ``TOKENSMITH_CONFIG``; its keys are the field
names below (``database_url = "postgresql://..."``).

Every value is checked when the settings are read: :func:`load_settings` refuses a bad
one, an unknown key in the file or a file it cannot read with a :class:`ConfigError`
whose one line names the setting and where it was set (docs/operations.md, "Settings
validation").
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from tokensmith.config_error import ConfigError

__all__ = [
    "COMPAT_DIALECTS",
    "MIN_SECRET_KEY_BITS",
    "MIN_SECRET_KEY_LENGTH",
    "SETTINGS_ENV",
    "ConfigError",
    "Settings",
    "estimated_entropy_bits",
    "load_settings",
    "secret_key_weakness",
]

COMPAT_DIALECTS = ("tpay", "tbc", "dot")
#: FAPI 2.0 Security Profile §5.4.1: the JWS algorithms allowed.
FAPI2_ALGS = ("ES256", "PS256", "EdDSA")
#: The environment variable through which ``tokensmith serve`` hands its checked settings
#: (as JSON) to the uvicorn workers it starts (:func:`tokensmith.web.app.app_from_environ`).
SETTINGS_ENV = "TOKENSMITH_SETTINGS_JSON"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: The asymmetric JWS algorithms a DPoP proof may use (:mod:`tokensmith.core.dpop`).
DpopAlg = Literal[
    "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA"
]

#: A secret key shorter than this is refused: 32 random hex digits are 128 bits.
MIN_SECRET_KEY_LENGTH = 32
#: A secret key whose :func:`estimated_entropy_bits` is below this is refused.
MIN_SECRET_KEY_BITS = 80
#: A repeat shorter than this counts as new characters in the estimate: random keys
#: repeat three characters often enough, four rarely.
_MIN_REPEAT = 4
#: Characters of a key the estimate looks at (a longer key only adds to its strength).
_ESTIMATE_SPAN = 256
_KEY_ADVICE = "use a random key, e.g. `openssl rand -base64 32`"


def estimated_entropy_bits(key: str) -> float:
    """A cautious estimate of the randomness in ``key``: its characters, with each run or
    repeat of four or more characters already seen counted as one, times log2 of the
    number of different characters in it.

    A random key scores a little under its true entropy (32 random hex digits, 128 bits:
    about 120; ``openssl rand -base64 32``: about 200); a key made of a word and a run of
    one letter scores under 80, a key of one repeated character 0."""
    text = key[:_ESTIMATE_SPAN]
    alphabet = len(set(text))
    if alphabet < 2:
        return 0.0
    units, i = 0, 0
    while i < len(text):
        repeat = _repeat_length(text, i)
        i += repeat if repeat >= _MIN_REPEAT else 1
        units += 1
    return units * math.log2(alphabet)


def _repeat_length(text: str, i: int) -> int:
    """The longest prefix of ``text[i:]`` that also starts somewhere before ``i``."""
    length = 0
    while i + length < len(text) and text.find(text[i : i + length + 1], 0, i + length) >= 0:
        length += 1
    return length


def secret_key_weakness(key: str) -> str | None:
    """Why ``key`` is too weak to seal the signing keys, or ``None`` when it is not: fewer
    than :data:`MIN_SECRET_KEY_LENGTH` characters, or an :func:`estimated_entropy_bits`
    under :data:`MIN_SECRET_KEY_BITS`. Never says the key itself."""
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return f"has {len(key)} characters; it needs {MIN_SECRET_KEY_LENGTH} characters or more"
    bits = estimated_entropy_bits(key)
    if bits < MIN_SECRET_KEY_BITS:
        return (
            f"repeats itself: about {bits:.0f} bits of entropy by its estimate, "
            f"fewer than {MIN_SECRET_KEY_BITS}"
        )
    return None


def _check_database_url(url: str) -> None:
    """A URL of a backend tokensmith runs on: SQLite (a file) or PostgreSQL."""
    usage = "use sqlite:///PATH or postgresql://USER@HOST/DATABASE"
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {usage}")
    backend = scheme.split("+", 1)[0].lower()
    if backend == "postgres":
        raise ValueError("the scheme is postgresql://, not postgres://")
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"database {backend!r} is not supported: {usage}")
    if backend == "sqlite":
        path = rest[1:].partition("?")[0] if rest.startswith("/") else ""
        if path in ("", ":memory:"):
            raise ValueError(
                "a SQLite URL names a file: sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db"
            )
        return
    try:
        _ = urllib.parse.urlsplit(url).port
    except ValueError as exc:
        raise ValueError(f"the host or port of the database URL is not valid ({exc})") from None


def _read_toml(path: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The settings file, every key of which must name a setting."""
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for key in data:
        if key not in fields:
            wanted = key.lower().removeprefix("tokensmith_")
            close = difflib.get_close_matches(wanted, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown setting {key!r} in {path}{hint}")
    return data


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: str | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = _read_toml(path, settings_cls.model_fields) if path else {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    """Everything an operator can set. Secrets here are never logged."""

    model_config = SettingsConfigDict(env_prefix="TOKENSMITH_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    #: Public base URL; the ``iss`` of every token. Derived from host and port when empty.
    issuer: str = ""
    #: ``aud`` of JWT access tokens (RFC 9068 §2.2). Defaults to the issuer.
    audience: str = ""
    database_url: str = Field(default="sqlite:///tokensmith.db", repr=False)
    #: Database connections each worker keeps open; requests beyond it wait for one.
    database_pool_size: int = Field(default=20, ge=1)
    redis_url: str | None = Field(default=None, repr=False)
    #: Prefix of every Redis key, so deployments (and test runs) can share one Redis.
    redis_prefix: str = "tokensmith:"
    #: Encrypts signing keys at rest. Several, comma-separated: the first encrypts, all decrypt.
    secret_key: str = Field(default="", repr=False)
    #: Where a generated ``secret_key`` is kept when none is set (single-host use).
    secret_key_file: str = "tokensmith.key"
    compat: Annotated[tuple[str, ...], NoDecode] = ()
    signing_alg: Literal["ES256", "RS256", "EdDSA"] = "ES256"
    default_token_format: Literal["jwt", "opaque"] = "jwt"
    access_token_ttl: int = 3600
    max_access_token_ttl: int = 86400
    #: How long a client record or ``tbc`` API key is cached: a revocation is seen within it
    #: on every worker of every instance (docs/operations.md, "Revocation delay").
    client_cache_ttl: float = 2.0
    key_reload_interval: float = 5.0
    #: Seconds within which a JWT revoked anywhere is inactive at the introspection of every
    #: worker of every instance (docs/operations.md, "Revocation delay").
    revocation_sync_interval: float = 1.0
    #: The issuer that issued the opaque tokens, refresh tokens and codes stored before
    #: migration 0006 (which records each token's issuer); only an instance of that issuer
    #: honours them. Empty: every instance does; ``none``: none does (docs/operations.md,
    #: "Issuers sharing a database").
    legacy_token_issuer: str = ""
    failures_per_client: int = 10
    failures_per_address: int = 30
    failure_window: int = 60
    max_body_bytes: int = 16384
    # -- connections (docs/operations.md, "Connections and timeouts") ------------------
    #: Seconds a client has to send a request's line and headers, counted from the
    #: connection's start for its first request and from the first byte for the next.
    http_header_timeout: float = Field(default=10.0, gt=0)
    #: Seconds a client has to send a request's whole body once its headers are in.
    http_body_timeout: float = Field(default=30.0, gt=0)
    #: Seconds a connection may wait for its next request after a response.
    http_keepalive_timeout: float = Field(default=5.0, gt=0)
    #: Connections a worker holds open; one more closes the one idle longest, or is
    #: refused when none is idle. Never more than the open-file limit allows.
    http_max_connections: int = Field(default=1000, ge=1)
    log_json: bool = False
    log_level: str = "INFO"
    #: Trust ``X-Forwarded-For`` from these proxy addresses for the source address, and
    #: the client certificate header (``client_cert_header``) from them alone.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    #: The header in which a trusted proxy that terminated mutual TLS forwards the
    #: client's certificate (RFC 8705; docs/fapi.md): URL-encoded PEM (nginx
    #: ``$ssl_client_escaped_cert``), PEM or base64 DER.
    client_cert_header: str = Field(
        default="X-Client-Cert", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$"
    )
    demo: bool = False
    auto_migrate: bool = True
    # -- authorization code flow (docs/partner-apps.md) ---------------------------------
    #: Lifetime of an authorization code (RFC 6749 §4.1.2 recommends at most 10 minutes).
    authorization_code_ttl: int = Field(default=600, ge=1, le=600)
    #: Access tokens from the authorization_code and refresh_token grants.
    partner_access_token_ttl: int = Field(default=7200, ge=1)
    #: A refresh token dies if unused this long (each exchange starts a new one).
    refresh_token_idle_ttl: int = Field(default=30 * 86400, ge=60)
    #: No refresh token of an authorization outlives this, however often it is exchanged.
    refresh_token_absolute_ttl: int = Field(default=180 * 86400, ge=60)
    #: Seconds in which the refresh token spent last may be presented once more (0-60),
    #: so that a client whose answer was lost (a dropped connection, a server killed after
    #: the commit) keeps its session; 0 makes every second presentation reuse.
    refresh_grace_seconds: int = Field(default=30, ge=0, le=60)
    #: Require PKCE from confidential clients too (public clients always need it).
    require_pkce: bool = False
    #: Seconds a ``request_uri`` from the PAR endpoint stays usable (RFC 9126 §2.2).
    par_lifetime: int = Field(default=60, ge=5, le=600)
    #: Accept authorization requests only by PAR, from every client (RFC 9126 §5); a
    #: client's own ``require_par`` asks the same of that client alone.
    require_pushed_authorization_requests: bool = False
    # -- rich authorization requests, RFC 9396 (docs/consents.md) ------------------------
    #: A JSON or TOML file mapping each ``authorization_details`` type to its JSON Schema,
    #: besides the built-in ones and those registered with the CLI.
    authorization_details_types: str | None = None
    #: At most this many objects, and this many bytes, in one ``authorization_details``.
    authorization_details_max_entries: int = Field(default=10, ge=1, le=100)
    authorization_details_max_bytes: int = Field(default=8192, ge=256, le=65536)
    #: Seconds a consent lodged at ``/oauth/consents`` awaits the user; a partner's
    #: ``expires_in`` may only shorten it.
    consent_lifetime: int = Field(default=600, ge=10, le=86400)
    #: Seconds between re-reads of the types registered with the CLI, so every running
    #: instance accepts an added type and refuses a removed one (0: only at start).
    authorization_details_types_refresh: float = Field(default=30.0, ge=0)
    # -- DPoP, RFC 9449 (docs/fapi.md) ---------------------------------------------------
    #: Algorithms a DPoP proof may be signed with (asymmetric only; FAPI 2.0's by default).
    dpop_signing_algs: Annotated[tuple[DpopAlg, ...], NoDecode] = ("ES256", "PS256", "EdDSA")
    #: Seconds after its ``iat`` a DPoP proof is still accepted (its jti is kept as long).
    dpop_proof_max_age: int = Field(default=60, ge=1, le=600)
    #: Seconds a DPoP proof's ``iat`` may be ahead of the server's clock.
    dpop_proof_leeway: int = Field(default=5, ge=0, le=60)
    #: Require a server-provided nonce in every DPoP proof (RFC 9449 §8).
    dpop_nonce: bool = False
    # -- private_key_jwt, RFC 7523 (docs/fapi.md) ------------------------------------------
    #: Algorithms a client assertion may be signed with (asymmetric only; FAPI 2.0's).
    client_assertion_signing_algs: Annotated[tuple[DpopAlg, ...], NoDecode] = (
        "ES256",
        "PS256",
        "EdDSA",
    )
    #: Seconds a client assertion may live (``exp - iat``; ``exp - now`` without ``iat``).
    client_assertion_max_lifetime: int = Field(default=300, ge=10, le=3600)
    #: Seconds a JWK Set fetched from a client's ``jwks_uri`` is kept.
    jwks_uri_cache_ttl: int = Field(default=300, ge=0, le=86400)
    # -- the FAPI 2.0 profile (docs/fapi.md) -----------------------------------------------
    #: ``fapi2``: every client without a profile of its own follows the FAPI 2.0 Security
    #: Profile (PAR, PKCE S256, private_key_jwt, DPoP-bound tokens, 60 s codes).
    profile: Literal["default", "fapi2"] = "default"
    # -- dynamic client registration, RFC 7591 / RFC 7592 (docs/registration.md) ----------
    #: ``off``: no ``/oauth/register``; ``open``: anyone may register; ``initial_access_token``:
    #: only with a token made by ``tokensmith registration token create``.
    registration: Literal["off", "open", "initial_access_token"] = "off"
    #: Scopes a registered client may ask for; a client that asks for none gets them all.
    registration_scopes: Annotated[tuple[str, ...], NoDecode] = ("read",)
    #: Public keys that sign trusted software statements (RFC 7591 §2.3): a JWK Set as
    #: JSON, or the path of a file holding one. Empty: no statement is trusted.
    registration_software_statement_jwks: str = ""
    #: Refuse a registration without a trusted software statement.
    registration_require_software_statement: bool = False
    #: Registration requests one source address may make an hour (the endpoint is
    #: unauthenticated in ``open`` mode).
    registrations_per_address: int = Field(default=20, ge=1)
    #: Larger registration bodies are refused with 413 before they are read.
    registration_max_body_bytes: int = Field(default=65536, ge=1024, le=1048576)
    #: Accept ``client_secret_jwt`` assertions (HS256/384/512, RFC 7523 §2.2) from clients
    #: registered with ``--auth-method client_secret_jwt``, and advertise them.
    client_secret_jwt: bool = False
    #: Browser sessions of the login page and the panel.
    session_idle_ttl: int = Field(default=1800, ge=60)
    session_absolute_ttl: int = Field(default=12 * 3600, ge=60)
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_failure_window: int = 900
    #: Seconds between runs of the purge job (0 disables it); rows deleted per batch.
    purge_interval: float = Field(default=300.0, ge=0)
    purge_batch_size: int = Field(default=1000, ge=1)
    # -- merchant panel (docs/panel.md) --------------------------------------------------
    #: Scopes a merchant may give its API keys and partner apps in the panel.
    panel_scopes: Annotated[tuple[str, ...], NoDecode] = ("read", "write", "admin")
    #: Seconds between moves of a worker's request counts into its Prometheus metrics: how
    #: far behind ``/metrics`` may show the other workers (0: only at scrapes and shutdown).
    metrics_flush_interval: float = Field(default=1.0, ge=0)
    #: A port of its own for ``/metrics``, ``/livez`` and ``/readyz`` (then 404 on the
    #: public port), served by ``tokensmith serve``'s main process with every worker's
    #: counts summed; none (or empty): they are on the public port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    #: The address ``metrics_port`` listens on.
    metrics_host: str = "127.0.0.1"
    #: OpenTelemetry traces (``pip install 'tokensmith[otel]'``): a server span per
    #: request, exported with the standard ``OTEL_*`` variables (docs/operations.md).
    otel: bool = False
    #: Seconds between writes of the per-key token counters (0: only at shutdown).
    activity_flush_interval: float = Field(default=10.0, ge=0)
    #: Days of hourly token counts kept (the activity chart shows 7).
    activity_retention_days: int = Field(default=90, ge=8)
    #: Failed authentications are kept this many seconds, and at most this many rows.
    auth_failure_retention: int = Field(default=7 * 86400, ge=3600)
    auth_failure_max_rows: int = Field(default=100_000, ge=100)
    # -- audit events (docs/audit.md) ----------------------------------------------------
    #: Days audit events are kept (the purge job deletes older ones).
    audit_retention_days: int = Field(default=365, ge=1)
    #: Where each audit event is POSTed, signed (empty: no webhook).
    audit_webhook_url: str = Field(default="", repr=False)
    #: The HMAC-SHA256 key of the ``Tokensmith-Signature`` header.
    audit_webhook_secret: str = Field(default="", repr=False, validate_default=True)
    #: Failed attempts after which a delivery is dead-lettered (the panel can retry it).
    audit_webhook_max_attempts: int = Field(default=10, ge=1, le=100)
    #: Seconds between looks at the outbox.
    audit_webhook_interval: float = Field(default=5.0, gt=0)
    #: Seconds a delivery may take (and an instance holds a claimed row).
    audit_webhook_timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("secret_key")
    @classmethod
    def _check_secret_keys(cls, v: str) -> str:
        keys = [k.strip() for k in v.split(",") if k.strip()]
        for n, key in enumerate(keys, 1):
            weakness = secret_key_weakness(key)
            if weakness is not None:
                which = f"key {n} of {len(keys)}" if len(keys) > 1 else "the key"
                raise ValueError(f"{which} {weakness}: {_KEY_ADVICE}")
        return v

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, v: str) -> str:
        _check_database_url(v)
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, v: str | None) -> str | None:
        if v and urllib.parse.urlsplit(v).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("use redis://HOST:PORT/DB, rediss://... or unix:///PATH")
        return v or None

    @field_validator("audit_webhook_url")
    @classmethod
    def _check_audit_webhook_url(cls, v: str) -> str:
        if v and urllib.parse.urlsplit(v).scheme not in ("https", "http"):
            raise ValueError("use an https:// (or http://) URL")
        return v

    @field_validator("audit_webhook_secret")
    @classmethod
    def _webhook_needs_a_secret(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("audit_webhook_url") and len(v) < 16:
            raise ValueError(
                "set at least 16 characters to sign the deliveries to audit_webhook_url"
            )
        return v

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, v: str) -> str:
        if v.upper() not in LOG_LEVELS:
            raise ValueError(f"choose one of {', '.join(LOG_LEVELS)}")
        return v.upper()

    @field_validator("compat", mode="before")
    @classmethod
    def _split_compat(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [p.strip() for p in v.replace(",", " ").split() if p.strip()]
        for name in v:
            if name not in COMPAT_DIALECTS:
                raise ValueError(
                    f"unknown dialect {name!r}; choose from {', '.join(COMPAT_DIALECTS)}"
                )
        return tuple(v)

    @field_validator("panel_scopes", "registration_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.replace(",", " ").split()
        if not v or any(not s.isascii() or not s.isprintable() or " " in s for s in v):
            raise ValueError("name one or more scopes")
        return tuple(v)

    @field_validator("dpop_signing_algs", "client_assertion_signing_algs", mode="before")
    @classmethod
    def _split_algs(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.replace(",", " ").split()
        if not v:
            raise ValueError("name at least one algorithm")
        return tuple(v)

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_metrics_port(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("metrics_port")
    @classmethod
    def _check_metrics_port(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and v == info.data.get("port"):
            raise ValueError("the metrics port must differ from the public port")
        return v

    @field_validator("profile")
    @classmethod
    def _check_profile(cls, v: str, info: ValidationInfo) -> str:
        """FAPI 2.0 for the whole server: refuse what cannot comply (docs/fapi.md)."""
        if v != "fapi2":
            return v
        if info.data.get("compat"):
            raise ValueError(
                "fapi2 cannot be used with compat dialects: their token endpoints take "
                "client secrets and API keys and issue bearer tokens; remove TOKENSMITH_COMPAT"
            )
        if info.data.get("signing_alg") == "RS256":
            raise ValueError("fapi2 signs tokens with ES256 or EdDSA (FAPI 2.0 §5.4.1), not RS256")
        for name in ("dpop_signing_algs", "client_assertion_signing_algs"):
            extra = [a for a in info.data.get(name, ()) if a not in FAPI2_ALGS]
            if extra:
                raise ValueError(
                    f"fapi2 allows only {', '.join(FAPI2_ALGS)} (FAPI 2.0 §5.4.1): remove "
                    f"{', '.join(extra)} from {name}"
                )
        return v

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(p.strip() for p in v.split(",") if p.strip())
        return v

    @property
    def issuer_url(self) -> str:
        return (self.issuer or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def audience_value(self) -> str:
        return self.audience or self.issuer_url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_path.get() or os.environ.get("TOKENSMITH_CONFIG") or None
        return init_settings, env_settings, _TomlSource(settings_cls, path)


#: The ``--config`` file of the :func:`load_settings` call under way (not the process
#: environment, which would leak the path into every later ``Settings()``).
_config_path: ContextVar[str | None] = ContextVar("tokensmith_config_path", default=None)


def load_settings(config: str | None = None, **flags: Any) -> Settings:
    """Flags (``None`` values ignored) over environment over the TOML file.

    Raises :class:`ConfigError` for a value that fails its check, naming the flag,
    variable or file key it came from, and for a config file that cannot be read or
    holds a key that names no setting."""
    given = {k: v for k, v in flags.items() if v is not None}
    path = config or os.environ.get("TOKENSMITH_CONFIG") or None
    token = _config_path.set(config or None)
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, given, path)) from None
    finally:
        _config_path.reset(token)


def _describe(exc: ValidationError, flags: Mapping[str, Any], path: str | None) -> str:
    """One line for all the values refused: where each was set, and why."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        reason = error["msg"].removeprefix("Value error, ")
        info = Settings.model_fields.get(field)
        if info is not None and info.repr and "input" in error:
            reason += f" (got {error['input']!r})"
        parts.append(f"{_source(field, flags, path)}: {reason}")
    return "; ".join(parts)


def _source(field: str, flags: Mapping[str, Any], path: str | None) -> str:
    """Where ``field`` was set: a flag, an environment variable or the config file."""
    if field in flags:
        return "--" + field.replace("_", "-")
    variable = "TOKENSMITH_" + field.upper()
    if any(name.upper() == variable for name in os.environ):
        return variable
    if path:
        return f"{field} in {path}"
    return field
