"""Subcommands load when they run: ``tokensmith --help`` and ``tokensmith token`` start
without importing the server, SQLAlchemy or Alembic."""

from __future__ import annotations

import ast
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from tokensmith.cli import COMMANDS, main

_HEAVY = ("sqlalchemy", "alembic", "starlette", "uvicorn", "tokensmith.web")


def _imported_after(*args: str) -> set[str]:
    code = (
        "import sys\n"
        "from tokensmith.cli import main\n"
        f"try:\n    main({list(args)!r})\n"
        "except SystemExit:\n    pass\n"
        f"print(sorted(m for m in {_HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(ast.literal_eval(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args", [("--help",), ("--version",), ("token", "--help")], ids=["help", "version", "token"]
)
def test_help_version_and_token_import_no_server_code(args: tuple[str, ...]) -> None:
    assert _imported_after(*args) == set()


def test_help_lists_each_command_with_its_own_summary() -> None:
    ctx = click.Context(main)
    for name, (_, _, summary) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=1000) == summary


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["nope"])
    assert result.exit_code == 2 and "No such command 'nope'" in result.output
