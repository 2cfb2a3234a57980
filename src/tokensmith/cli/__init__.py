"""The ``tokensmith`` command.

Subcommands are imported when they run, not when the program starts: ``tokensmith token``
in a shell script loads the client library only, not the server, SQLAlchemy and Alembic.

A configuration mistake found by any subcommand (:class:`~tokensmith.config_error.ConfigError`)
ends it with one line, ``tokensmith: error: ...``, and exit status 2.
"""

from __future__ import annotations

import importlib
import importlib.metadata

import click

from tokensmith import __version__
from tokensmith.cli._errors import OperatorError
from tokensmith.config_error import ConfigError

__all__ = ["COMMANDS", "main", "version"]

#: name -> (module, attribute, the one-line help ``tokensmith --help`` shows)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "apikeys": (
        "tokensmith.cli.apikeys",
        "apikeys",
        "Create, list, rotate and revoke developer app keys.",
    ),
    "authorization-details": (
        "tokensmith.cli.details",
        "authorization_details",
        "List, register and remove RFC 9396 authorization_details types.",
    ),
    "audit": ("tokensmith.cli.audit", "audit", "List and export audit events."),
    "clients": (
        "tokensmith.cli.clients",
        "clients",
        "Create, list, show, update, revoke, delete clients and rotate their secrets.",
    ),
    "keys": ("tokensmith.cli.keys", "keys", "List and rotate signing keys."),
    "merchants": ("tokensmith.cli.accounts", "merchants", "Create, list and disable merchants."),
    "purge": (
        "tokensmith.cli.purge",
        "purge",
        "Delete expired access tokens, ended refresh token families, expired authorization codes, "
        "sessions, pushed authorization requests and audit events older than "
        "TOKENSMITH_AUDIT_RETENTION_DAYS, in batches; print the counts.",
    ),
    "registration": (
        "tokensmith.cli.registration",
        "registration",
        "Create, list and revoke initial access tokens for dynamic client registration.",
    ),
    "resources": (
        "tokensmith.cli.resources",
        "resources",
        "Register, list and remove the APIs tokens may be restricted to (RFC 8707).",
    ),
    "serve": ("tokensmith.cli.serve", "serve", "Start the server."),
    "token": (
        "tokensmith.client.cli",
        "token",
        "Obtain an access token (client_credentials, RFC 6749 §4.4) and print it.",
    ),
    "users": (
        "tokensmith.cli.accounts",
        "users",
        "Create, list and disable the people who log in.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's "lazily loading
    subcommands" pattern); ``--help`` lists them from :data:`COMMANDS` without importing."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> object:
        """Run the subcommand; a :class:`ConfigError` it raises becomes one line on stderr
        and exit status 2."""
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise OperatorError(str(exc)) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def version() -> str:
    """The installed distribution's version (its metadata), else the source tree's."""
    try:
        return importlib.metadata.version("tokensmith")
    except importlib.metadata.PackageNotFoundError:
        return __version__


#: ``-h`` next to ``--help`` on every command (subcommands inherit the context settings).
CONTEXT_SETTINGS: dict[str, object] = {"help_option_names": ["-h", "--help"]}


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(
    version(), "-V", "--version", prog_name="tokensmith", message="%(prog)s %(version)s"
)
def main() -> None:
    """tokensmith: an OAuth 2.0 authorization server for merchant and partner APIs."""
