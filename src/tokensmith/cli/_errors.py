"""How the command reports an operator's mistake: one line, exit status 2."""

from __future__ import annotations

from typing import IO, Any

import click

__all__ = ["EXIT_MISTAKE", "OperatorError"]

#: The exit status of a command refused for a mistake in how it was run or configured
#: (click's own status for a usage error).
EXIT_MISTAKE = 2


class OperatorError(click.ClickException):
    """Printed as ``tokensmith: error: <one line>`` on stderr; the command exits 2."""

    exit_code = EXIT_MISTAKE

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"tokensmith: error: {self.format_message()}", file=file, err=True)
