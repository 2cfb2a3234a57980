"""The ``tokensmith`` command."""

from __future__ import annotations

import click

from tokensmith import __version__
from tokensmith.cli.accounts import merchants, users
from tokensmith.cli.apikeys import apikeys
from tokensmith.cli.clients import clients
from tokensmith.cli.keys import keys
from tokensmith.cli.purge import purge
from tokensmith.cli.serve import serve

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="tokensmith")
def main() -> None:
    """tokensmith: an OAuth 2.0 authorization server for merchant and partner APIs."""


main.add_command(serve)
main.add_command(clients)
main.add_command(apikeys)
main.add_command(keys)
main.add_command(merchants)
main.add_command(users)
main.add_command(purge)

try:  # the client library's command, when present
    from tokensmith.client.cli import token

    main.add_command(token)
except ImportError:  # pragma: no cover
    pass
