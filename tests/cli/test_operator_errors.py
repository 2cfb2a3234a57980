"""An operator's mistake (a bad setting, a missing config file, a database that cannot be
opened, a secret key that cannot open the stored signing keys) ends every command with
one line on stderr, ``tokensmith: error: ...``, and exit status 2: never a traceback."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tokensmith.cli import main

PG_URL = os.environ.get("TOKENSMITH_TEST_POSTGRES_URL")
KEY_A = "Vq3Hx9tKf2LmZ8pW4cRy7bNd1sGj6aEu"
KEY_B = "T5nQw8Ck2Rz7Yh4Lp9Xv3Md6Fb1Gs0Ja"

#: Every command that reads the server's settings, with the arguments it needs.
COMMANDS: list[tuple[str, ...]] = [
    ("serve",),
    ("clients", "list"),
    ("clients", "create", "--name", "x"),
    ("keys", "list"),
    ("keys", "rotate"),
    ("apikeys", "list"),
    ("merchants", "list"),
    ("users", "list"),
    ("resources", "list"),
    ("purge",),
]
IDS = [" ".join(c[:2]) for c in COMMANDS]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean ``TOKENSMITH_*`` environment; a ``serve`` that gets past its checks fails the
    test instead of starting a server."""
    for name in list(os.environ):
        if name.startswith("TOKENSMITH_"):
            monkeypatch.delenv(name)

    def no_server(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("serve started a server despite the mistake")

    monkeypatch.setattr("uvicorn.run", no_server)
    return {
        "TOKENSMITH_DATABASE_URL": f"sqlite:///{tmp_path / 'ok.db'}",
        "TOKENSMITH_SECRET_KEY": KEY_A,
        "TOKENSMITH_SECRET_KEY_FILE": str(tmp_path / "unused.key"),
    }


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def refused(result: Result) -> str:
    """The one line a refused command printed."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tokensmith: error: ")
    return lines[0]


# (mistake, extra arguments, environment, config file text, words of the line)
SETTINGS_MISTAKES: list[tuple[str, tuple[str, ...], dict[str, str], str | None, str]] = [
    ("port not a number", (), {"TOKENSMITH_PORT": "abc"}, None, "TOKENSMITH_PORT"),
    ("weak secret key", (), {"TOKENSMITH_SECRET_KEY": "hunter2"}, None, "TOKENSMITH_SECRET_KEY"),
    ("bad database url", ("--database-url", "mysql://u@h/db"), {}, None, "--database-url"),
    ("missing config file", ("--config", "{tmp}/missing.toml"), {}, None, "not found"),
    ("misspelled config key", ("--config", "{tmp}/c.toml"), {}, "prot = 1\n", "'port'"),
    ("config file syntax", ("--config", "{tmp}/c.toml"), {}, "port = \n", "TOML"),
    ("bad timeout", (), {"TOKENSMITH_HTTP_BODY_TIMEOUT": "soon"}, None, "BODY_TIMEOUT"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
@pytest.mark.parametrize(
    ("args", "extra", "toml", "words"),
    [m[1:] for m in SETTINGS_MISTAKES],
    ids=[m[0] for m in SETTINGS_MISTAKES],
)
def test_a_settings_mistake_is_one_line_and_status_2(
    env: dict[str, str],
    tmp_path: Path,
    command: tuple[str, ...],
    args: tuple[str, ...],
    extra: dict[str, str],
    toml: str | None,
    words: str,
) -> None:
    if toml is not None:
        (tmp_path / "c.toml").write_text(toml)
    argv = [*command, *(a.format(tmp=tmp_path) for a in args)]
    assert words in refused(invoke(env | extra, *argv))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--port", "99999"), "--port"),
        (("--port", "0"), "--port"),
        (("--workers", "0"), "--workers"),
    ],
    ids=["port 99999", "port 0", "no workers"],
)
def test_serve_refuses_a_bad_flag_before_it_listens(
    env: dict[str, str], args: tuple[str, ...], words: str
) -> None:
    assert words in refused(invoke(env, "serve", *args))


DB_COMMANDS = COMMANDS


@pytest.mark.parametrize("command", DB_COMMANDS, ids=IDS)
def test_an_unreachable_database_is_one_line_without_its_password(
    env: dict[str, str], command: tuple[str, ...]
) -> None:
    url = "postgresql://postgres:pw-Zq81x@127.0.0.1:1/test"
    line = refused(invoke(env, *command, "--database-url", url))
    assert "pw-Zq81x" not in line
    assert "cannot open the database postgresql://postgres:***@127.0.0.1:1/test" in line


@pytest.mark.parametrize("command", DB_COMMANDS, ids=IDS)
def test_a_sqlite_file_in_a_missing_directory_is_one_line(
    env: dict[str, str], tmp_path: Path, command: tuple[str, ...]
) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 't.db'}"
    assert "unable to open database file" in refused(invoke(env, *command, "--database-url", url))


@pytest.mark.skipif(not PG_URL, reason="TOKENSMITH_TEST_POSTGRES_URL not set")
@pytest.mark.parametrize("command", [("serve",), ("clients", "list")], ids=["serve", "clients"])
def test_a_missing_postgres_database_is_one_line(
    env: dict[str, str], command: tuple[str, ...]
) -> None:
    from sqlalchemy.engine import make_url

    assert PG_URL is not None
    url = make_url(PG_URL).set(database="ts_no_such_database").render_as_string(False)
    assert "does not exist" in refused(invoke(env, *command, "--database-url", url))


@pytest.mark.parametrize("command", [("serve",), ("keys", "rotate")], ids=["serve", "keys rotate"])
def test_a_secret_key_that_cannot_open_the_stored_keys_is_one_line(
    env: dict[str, str], command: tuple[str, ...]
) -> None:
    assert invoke(env, "keys", "rotate").exit_code == 0
    before = invoke(env, "keys", "list", "--json").stdout
    line = refused(invoke(env | {"TOKENSMITH_SECRET_KEY": KEY_B}, *command))
    assert "cannot decrypt" in line and KEY_B not in line and KEY_A not in line
    assert invoke(env, "keys", "list", "--json").stdout == before, "a key was added"
    # the old key listed after the new one opens them: the documented way to change it
    assert (
        invoke(env | {"TOKENSMITH_SECRET_KEY": f"{KEY_B},{KEY_A}"}, "keys", "rotate").exit_code == 0
    )


def test_the_url_in_a_message_hides_its_password() -> None:
    from tokensmith.cli._common import render_url

    assert render_url("postgresql://u:p%40ss@h:5/d") == "postgresql://u:***@h:5/d"
    assert render_url("sqlite:///t.db") == "sqlite:///t.db"
    assert render_url("postgresql://u:secret@[::1") == "postgresql://u:***@[::1"


# The installed command itself: what the operator's terminal shows.
REAL: list[tuple[str, list[str], dict[str, str]]] = [
    ("port 99999", ["serve", "--port", "99999"], {}),
    ("port abc", ["clients", "list"], {"TOKENSMITH_PORT": "abc"}),
    ("missing config", ["serve", "--config", "/nonexistent/tokensmith.toml"], {}),
    ("unreachable database", ["serve", "--database-url", "postgresql://u@127.0.0.1:1/x"], {}),
]


@pytest.mark.parametrize(("argv", "extra"), [r[1:] for r in REAL], ids=[r[0] for r in REAL])
def test_the_tokensmith_command_prints_no_traceback(
    env: dict[str, str], tmp_path: Path, argv: list[str], extra: dict[str, str]
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TOKENSMITH_")}
    done = subprocess.run(
        [sys.executable, "-c", "from tokensmith.cli import main; main()", *argv],
        env=clean | env | extra,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokensmith: error: "), done.stderr


@pytest.mark.parametrize("command", [("serve",), ("clients", "list")], ids=["serve", "clients"])
def test_a_schema_newer_than_this_version_is_one_line(
    env: dict[str, str], tmp_path: Path, command: tuple[str, ...]
) -> None:
    import sqlite3

    assert invoke(env, "clients", "list").exit_code == 0
    with contextlib.closing(sqlite3.connect(tmp_path / "ok.db")) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
        db.commit()
    assert "Can't locate revision identified by '9999'" in refused(invoke(env, *command))


def test_a_sqlite_file_that_cannot_be_opened_leaves_no_thread_to_fail_later(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread left to report the failure after the command has ended would print a
    traceback after the one line."""
    failures: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    before = set(threading.enumerate())
    url = f"sqlite:///{tmp_path / 'missing' / 't.db'}"
    refused(invoke(env, "keys", "list", "--database-url", url))
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=5)
    assert failures == []
