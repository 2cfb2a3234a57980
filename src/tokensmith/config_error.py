"""The error of an operator's mistake: a setting, or what a setting names (a file, a
database, a secret key), is wrong.

Its message is one line that says what is wrong and where it was set, without the value
of a secret. The ``tokensmith`` command prints it as ``tokensmith: error: ...`` and exits
with status 2. This module imports nothing, so the command can catch the error without
loading the server.
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """A configuration mistake, told in one line."""
