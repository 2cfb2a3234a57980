"""Settings are checked when they are read: a value out of range, a key too weak to seal
the signing keys, a database URL no backend serves, or a config file key that names no
setting is refused with one line naming the setting and where it came from."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import pytest

from tokensmith.config_error import ConfigError
from tokensmith.settings import load_settings, secret_key_weakness

STRONG = "Vq3Hx9tKf2LmZ8pW4cRy7bNd1sGj6aEu"


def refusal(clean_env: pytest.MonkeyPatch, *, config: str | None = None, **flags: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(config, **flags)
    message = str(caught.value)
    assert "\n" not in message
    return message


# (what the operator did, flags, env, the words the one line must hold)
MISTAKES: list[tuple[str, dict[str, Any], dict[str, str], tuple[str, ...]]] = [
    ("port above 65535", {"port": 99999}, {}, ("--port", "65535")),
    ("port zero", {"port": 0}, {}, ("--port", "greater than or equal to 1")),
    ("port not a number", {}, {"TOKENSMITH_PORT": "abc"}, ("TOKENSMITH_PORT", "'abc'")),
    ("no workers", {}, {"TOKENSMITH_WORKERS": "0"}, ("TOKENSMITH_WORKERS",)),
    ("unknown log level", {}, {"TOKENSMITH_LOG_LEVEL": "LOUD"}, ("TOKENSMITH_LOG_LEVEL",)),
    ("short secret key", {}, {"TOKENSMITH_SECRET_KEY": "hunter2"}, ("32 characters",)),
    ("repeated secret key", {}, {"TOKENSMITH_SECRET_KEY": "x" * 40}, ("entropy",)),
    (
        "weak second secret key",
        {},
        {"TOKENSMITH_SECRET_KEY": STRONG + ",hunter2hunter2"},
        ("key 2 of 2",),
    ),
    ("word and a run", {}, {"TOKENSMITH_SECRET_KEY": "secret-" + "k" * 32}, ("entropy",)),
    ("mysql url", {"database_url": "mysql://u@h/db"}, {}, ("--database-url", "sqlite")),
    ("postgres url", {"database_url": "postgres://u@h/db"}, {}, ("postgresql://",)),
    ("not a url", {"database_url": "tokensmith.db"}, {}, ("--database-url",)),
    ("bad url port", {"database_url": "postgresql://h:notaport/db"}, {}, ("port",)),
    ("sqlite without a file", {"database_url": "sqlite://"}, {}, ("file",)),
    ("redis url", {}, {"TOKENSMITH_REDIS_URL": "localhost:6379"}, ("TOKENSMITH_REDIS_URL",)),
    ("negative timeout", {}, {"TOKENSMITH_HTTP_HEADER_TIMEOUT": "-1"}, ("HEADER_TIMEOUT",)),
    ("no connections", {}, {"TOKENSMITH_HTTP_MAX_CONNECTIONS": "0"}, ("MAX_CONNECTIONS",)),
    ("unknown profile", {}, {"TOKENSMITH_PROFILE": "fapi1"}, ("TOKENSMITH_PROFILE",)),
    ("metrics on the public port", {"metrics_port": 8000}, {}, ("--metrics-port", "differ")),
    ("metrics port above 65535", {}, {"TOKENSMITH_METRICS_PORT": "70000"}, ("METRICS_PORT",)),
    (
        "fapi2 with dialects",
        {},
        {"TOKENSMITH_PROFILE": "fapi2", "TOKENSMITH_COMPAT": "tpay"},
        ("TOKENSMITH_PROFILE", "compat dialects"),
    ),
    (
        "fapi2 signing RS256",
        {},
        {"TOKENSMITH_PROFILE": "fapi2", "TOKENSMITH_SIGNING_ALG": "RS256"},
        ("TOKENSMITH_PROFILE", "RS256"),
    ),
    (
        "fapi2 DPoP RS256",
        {},
        {"TOKENSMITH_PROFILE": "fapi2", "TOKENSMITH_DPOP_SIGNING_ALGS": "ES256 RS256"},
        ("TOKENSMITH_PROFILE", "RS256", "dpop_signing_algs"),
    ),
    (
        "fapi2 assertions ES384",
        {},
        {"TOKENSMITH_PROFILE": "fapi2", "TOKENSMITH_CLIENT_ASSERTION_SIGNING_ALGS": "ES384"},
        ("TOKENSMITH_PROFILE", "ES384", "client_assertion_signing_algs"),
    ),
]


@pytest.mark.parametrize(
    ("flags", "env", "words"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_a_bad_value_is_refused_naming_where_it_came_from(
    clean_env: pytest.MonkeyPatch, flags: dict[str, Any], env: dict[str, str], words: tuple[str]
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    message = refusal(clean_env, **flags)
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    "secret",
    ["hunter2", "x" * 40, "secret-" + "k" * 32, STRONG + ",hunter2hunter2", "s3cr3t-pw-" * 4],
)
def test_a_weak_secret_key_is_never_shown_in_its_refusal(
    clean_env: pytest.MonkeyPatch, secret: str
) -> None:
    clean_env.setenv("TOKENSMITH_SECRET_KEY", secret)
    message = refusal(clean_env)
    assert all(part not in message for part in secret.split(","))


def test_a_database_password_is_never_shown_in_its_refusal(clean_env: pytest.MonkeyPatch) -> None:
    message = refusal(clean_env, database_url="mysql://user:pw-Zq81x@h/db")
    assert "pw-Zq81x" not in message


GENERATED = {
    "openssl rand -hex 16": lambda: secrets.token_hex(16),
    "openssl rand -hex 32": lambda: secrets.token_hex(32),
    "openssl rand -base64 32": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    "token_urlsafe(24)": lambda: secrets.token_urlsafe(24),
    "token_urlsafe(32)": lambda: secrets.token_urlsafe(32),
}


@pytest.mark.parametrize("recipe", list(GENERATED))
def test_random_keys_of_128_bits_or_more_pass(recipe: str) -> None:
    for _ in range(2000):
        key = GENERATED[recipe]()
        assert secret_key_weakness(key) is None, key


@pytest.mark.parametrize(
    "weak",
    [
        "passwordpasswordpasswordpassword",
        "0123456789abcdef0123456789abcdef",
        "test-secret-key-" + "x" * 32,
        "ab" * 32,
        "a" * 10_000,
    ],
)
def test_long_keys_that_repeat_themselves_are_weak(weak: str) -> None:
    assert secret_key_weakness(weak) is not None


def test_comma_separated_keys_are_each_checked_and_empty_parts_ignored(
    clean_env: pytest.MonkeyPatch,
) -> None:
    other = secrets.token_urlsafe(32)
    assert load_settings(secret_key=f"{STRONG}, {other},").secret_key == f"{STRONG}, {other},"
    assert "key 1 of 2" in refusal(clean_env, secret_key=f"tiny,{STRONG}")


def test_no_secret_key_is_allowed_a_generated_file_is_used(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings().secret_key == ""


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///tokensmith.db",
        "sqlite:////var/lib/tokensmith/t.db",
        "sqlite+aiosqlite:///t.db",
        "postgresql://u:p@db.internal:5432/tokensmith",
        "postgresql+asyncpg://u@[::1]:5432/t",
        "postgresql:///t?host=/run/postgresql",
    ],
)
def test_supported_database_urls_pass(clean_env: pytest.MonkeyPatch, url: str) -> None:
    assert load_settings(database_url=url).database_url == url


def test_a_misspelled_config_key_is_refused_with_the_closest_name(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('databse_url = "sqlite:///x.db"\nport = 7000\n')
    message = refusal(clean_env, config=str(path))
    assert "databse_url" in message and "'database_url'" in message and str(path) in message


def test_an_unknown_config_key_without_a_close_name_is_refused(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("zzz = 1\n")
    assert "unknown setting 'zzz'" in refusal(clean_env, config=str(path))


def test_a_bad_value_in_the_config_file_names_the_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("port = 70000\n")
    message = refusal(clean_env, config=str(path))
    assert f"port in {path}" in message and "65535" in message


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "not found"), ("port = = 1\n", "not valid TOML"), ("[port]\nx = 1\n", "port")],
    ids=["missing", "syntax", "table"],
)
def test_a_config_file_that_cannot_be_read_is_refused(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, content: str | None, words: str
) -> None:
    path = tmp_path / "c.toml"
    if content is not None:
        path.write_text(content)
    message = refusal(clean_env, config=str(path))
    assert str(path) in message and words in message


def test_the_port_range_is_every_tcp_port(clean_env: pytest.MonkeyPatch) -> None:
    assert load_settings(port=1).port == 1
    assert load_settings(port=65535).port == 65535


def test_fapi2_with_the_defaults_is_accepted(clean_env: pytest.MonkeyPatch) -> None:
    """The default algorithms are FAPI 2.0's, and no dialect is on by default."""
    clean_env.setenv("TOKENSMITH_PROFILE", "fapi2")
    assert load_settings().profile == "fapi2"


def test_an_empty_metrics_port_keeps_metrics_on_the_public_port(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("TOKENSMITH_METRICS_PORT", "")
    assert load_settings().metrics_port is None
    clean_env.setenv("TOKENSMITH_METRICS_PORT", "9100")
    assert load_settings().metrics_port == 9100
