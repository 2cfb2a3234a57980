"""RFC 6749 §3.3 scope parsing."""

from __future__ import annotations

import pytest

from tokensmith.core.errors import InvalidScope
from tokensmith.core.scopes import parse_scope, resolve_scope

ALLOWED = ("read", "write", "admin")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("read", ("read",)),
        ("read write", ("read", "write")),
        ("write  read", ("write", "read")),
        ("read read", ("read",)),
        (" ", ()),
    ],
)
def test_parse_scope(raw: str, expected: tuple[str, ...]) -> None:
    assert parse_scope(raw) == expected


@pytest.mark.parametrize("raw", ['re"ad', "re\\ad", "read\twrite", "lécture"])
def test_scope_characters_outside_rfc6749_are_invalid(raw: str) -> None:
    with pytest.raises(InvalidScope):
        parse_scope(raw)


def test_omitted_scope_gets_default() -> None:
    assert resolve_scope(None, ALLOWED, ("read",)) == ("read",)
    assert resolve_scope("", ALLOWED, ("read",)) == ("read",)


def test_scope_outside_client_is_invalid() -> None:
    with pytest.raises(InvalidScope):
        resolve_scope("read payments", ALLOWED, ALLOWED)
