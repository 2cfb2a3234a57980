"""Settings: command-line flags, then ``TOKENSMITH_*`` environment, then a TOML file.

The file is named by ``--config`` or ``TOKENSMITH_CONFIG``; its keys are the field
names below (``database_url = "postgresql://..."``).
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = ["COMPAT_DIALECTS", "Settings", "load_settings"]

COMPAT_DIALECTS = ("tpay", "tbc", "dot")


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: str | None) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        if path:
            with Path(path).open("rb") as fh:
                self._data = tomllib.load(fh)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    """Everything an operator can set. Secrets here are never logged."""

    model_config = SettingsConfigDict(env_prefix="TOKENSMITH_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
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
    #: How long a client record is cached: the bound on revocation delay across instances.
    client_cache_ttl: float = 2.0
    key_reload_interval: float = 5.0
    #: Seconds before a JWT revoked on another instance is inactive at this one's introspection.
    revocation_sync_interval: float = 1.0
    failures_per_client: int = 10
    failures_per_address: int = 30
    failure_window: int = 60
    max_body_bytes: int = 16384
    log_json: bool = False
    log_level: str = "INFO"
    #: Trust ``X-Forwarded-For`` from these proxy addresses for the source address.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
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
    #: Seconds between writes of the per-key token counters (0: only at shutdown).
    activity_flush_interval: float = Field(default=10.0, ge=0)
    #: Days of hourly token counts kept (the activity chart shows 7).
    activity_retention_days: int = Field(default=90, ge=8)
    #: Failed authentications are kept this many seconds, and at most this many rows.
    auth_failure_retention: int = Field(default=7 * 86400, ge=3600)
    auth_failure_max_rows: int = Field(default=100_000, ge=100)

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

    @field_validator("panel_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.replace(",", " ").split()
        if not v or any(not s.isascii() or not s.isprintable() or " " in s for s in v):
            raise ValueError("panel_scopes must be one or more scope names")
        return tuple(v)

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
    """Flags (``None`` values ignored) over environment over the TOML file."""
    token = _config_path.set(config or None)
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    finally:
        _config_path.reset(token)
