"""Scope parsing and checks (RFC 6749 §3.3)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tokensmith.core.errors import InvalidScope

__all__ = ["format_scope", "parse_scope", "resolve_scope"]

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def parse_scope(raw: str) -> tuple[str, ...]:
    """Split a space-delimited scope string, keeping order, dropping repeats."""
    seen: dict[str, None] = {}
    for token in raw.split(" "):
        if not token:
            continue
        if not _SCOPE_TOKEN.fullmatch(token):
            raise InvalidScope("scope contains characters outside RFC 6749 §3.3")
        seen[token] = None
    return tuple(seen)


def format_scope(scopes: Iterable[str]) -> str:
    return " ".join(scopes)


def resolve_scope(
    requested: str | None, allowed: tuple[str, ...], default: tuple[str, ...]
) -> tuple[str, ...]:
    """The scope to grant: the request if it is a subset of ``allowed``, else the default.

    RFC 6749 §3.3: an omitted scope gets the pre-defined default; a scope
    outside the client's is ``invalid_scope``.
    """
    if requested is None or not requested.strip(" "):
        return default
    scopes = parse_scope(requested)
    extra = [s for s in scopes if s not in allowed]
    if extra:
        raise InvalidScope(f"scope not allowed for this client: {' '.join(extra)}")
    return scopes
