"""Settings come from command-line flags, over ``TOKENSMITH_*`` environment variables, over
the TOML file named by ``--config`` (or ``TOKENSMITH_CONFIG``), over the defaults."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tokensmith.cli import main
from tokensmith.settings import Settings, load_settings

TOML = """\
port = 7003
issuer = "https://from-file.test"
compat = ["tpay"]
failures_per_client = 3
client_cache_ttl = 0.5
log_json = true
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tokensmith.toml"
    path.write_text(TOML)
    return path


# (field, flag value, env text, env value, file value, default)
FIELDS: list[tuple[str, Any, str, Any, Any, Any]] = [
    ("port", 7001, "7002", 7002, 7003, 8000),
    (
        "issuer",
        "https://flag.test",
        "https://env.test",
        "https://env.test",
        "https://from-file.test",
        "",
    ),
    ("compat", ("dot",), "tbc,dot", ("tbc", "dot"), ("tpay",), ()),
    ("failures_per_client", 1, "2", 2, 3, 10),
    ("log_json", False, "false", False, True, False),
]


@pytest.mark.parametrize(
    ("field", "flag", "env_text", "env", "file", "default"), FIELDS, ids=[f[0] for f in FIELDS]
)
def test_flag_beats_env_beats_file_beats_default(
    clean_env: pytest.MonkeyPatch,
    config: Path,
    field: str,
    flag: Any,
    env_text: str,
    env: Any,
    file: Any,
    default: Any,
) -> None:
    assert getattr(load_settings(), field) == default
    assert getattr(load_settings(str(config)), field) == file
    clean_env.setenv("TOKENSMITH_" + field.upper(), env_text)
    assert getattr(load_settings(), field) == env
    assert getattr(load_settings(str(config)), field) == env
    assert getattr(load_settings(str(config), **{field: flag}), field) == flag


def test_none_flags_are_not_set(clean_env: pytest.MonkeyPatch, config: Path) -> None:
    """Click passes ``None`` for a flag not given: it must not hide env or file values."""
    clean_env.setenv("TOKENSMITH_ISSUER", "https://from-env.test")
    s = load_settings(str(config), port=None, issuer=None, compat=None)
    assert (s.port, s.issuer, s.compat) == (7003, "https://from-env.test", ("tpay",))


def test_tokensmith_config_env_names_the_file_and_config_flag_overrides_it(
    clean_env: pytest.MonkeyPatch, config: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.toml"
    other.write_text("port = 7999\n")
    clean_env.setenv("TOKENSMITH_CONFIG", str(config))
    assert load_settings().port == 7003
    assert Settings().port == 7003
    assert load_settings(str(other)).port == 7999


def test_config_flag_does_not_leak_into_the_environment(
    clean_env: pytest.MonkeyPatch, config: Path
) -> None:
    assert load_settings(str(config)).port == 7003
    assert "TOKENSMITH_CONFIG" not in os.environ
    assert load_settings().port == 8000  # a later call without --config reads no file


def test_cli_database_url_flag_beats_env_beats_config(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """End to end through ``tokensmith clients``: which database a command talks to."""
    db = {name: f"sqlite:///{tmp_path / (name + '.db')}" for name in ("flag", "env", "file")}
    config = tmp_path / "c.toml"
    config.write_text(f'database_url = "{db["file"]}"\n')
    clean_env.setenv("TOKENSMITH_SECRET_KEY", "precedence-Pw4Kz9Rq2Vt7Hb1Mx6Ld3Nc8Gf5Js0Y")
    runner = CliRunner()

    def create(name: str, *args: str) -> None:
        result = runner.invoke(main, ["clients", "create", "--name", name, "--json", *args])
        assert result.exit_code == 0, result.output

    def names(url: str) -> list[str]:
        result = runner.invoke(main, ["clients", "list", "--json", "--database-url", url])
        assert result.exit_code == 0, result.output
        return [c["name"] for c in json.loads(result.output)]

    create("via-file", "--config", str(config))
    clean_env.setenv("TOKENSMITH_DATABASE_URL", db["env"])
    create("via-env", "--config", str(config))
    create("via-flag", "--config", str(config), "--database-url", db["flag"])
    assert names(db["file"]) == ["via-file"]
    assert names(db["env"]) == ["via-env"]
    assert names(db["flag"]) == ["via-flag"]
