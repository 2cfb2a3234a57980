"""The admin API's core pieces against the in-memory store: paging with opaque cursors
and search, what a principal reaches, and revoking every token of a client."""

from __future__ import annotations

import pytest

from tokensmith.core.admin import ClientSpec
from tokensmith.core.admin_api import (
    ADMIN_SCOPES,
    AdminDenied,
    AdminPrincipal,
    BadCursor,
    paginate,
)
from tokensmith.core.client_admin import ClientAdmin
from tokensmith.core.clock import FrozenClock
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.memory import MemoryStore

ITEMS = [(float(n // 2), f"id{n}") for n in range(7)]


def key(item: tuple[float, str]) -> tuple[float, str]:
    return item


def test_pages_follow_each_other_without_gaps_or_repeats() -> None:
    seen, cursor = [], None
    while True:
        page = paginate(ITEMS, key, limit=3, cursor=cursor)
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(ITEMS)


def test_search_keeps_the_matching_items_ignoring_case() -> None:
    page = paginate(ITEMS, key, q="ID3", text=lambda i: i[1])
    assert page.items == [(1.0, "id3")] and page.next_cursor is None


@pytest.mark.parametrize(
    "cursor", ["%%%", "bm90IGpzb24", "WzEsMl0", "WyJhIiwiYiJd", "W3RydWUsImEiXQ"]
)
def test_a_cursor_this_server_did_not_hand_out_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        paginate(ITEMS, key, cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 201])
def test_a_page_size_out_of_range_is_refused(limit: int) -> None:
    with pytest.raises(ValueError):
        paginate(ITEMS, key, limit=limit)


def test_a_merchant_principal_reaches_its_merchant_only() -> None:
    p = AdminPrincipal("c1", "m1", frozenset({"admin:clients"}))
    assert p.sees("m1") and not p.sees("m2") and not p.sees(None)
    assert AdminPrincipal("c2", None, frozenset()).sees("m2")
    p.require("admin:clients")
    with pytest.raises(AdminDenied) as refused:
        p.require("admin:keys")
    assert (refused.value.status, refused.value.error) == (403, "insufficient_scope")


def test_admin_all_holds_every_family_and_plain_admin_none() -> None:
    p = AdminPrincipal("c1", None, frozenset({"admin:all"}))
    assert all(p.may(s) for s in ADMIN_SCOPES)
    assert set(ADMIN_SCOPES) <= p.admin_scopes()
    merchant_api = AdminPrincipal("c2", None, frozenset({"admin", "read", "write"}))
    assert not any(merchant_api.may(s) for s in ADMIN_SCOPES)
    assert merchant_api.admin_scopes() == frozenset()


async def test_revoking_a_clients_tokens_sets_the_cut_off_and_disable_is_undone(
    clock: FrozenClock,
) -> None:
    store = MemoryStore()
    admin = ClientAdmin(store, clock, SystemRandomness(), max_ttl=3600)
    client, _ = await admin.create(ClientSpec("k"))
    revoked = await admin.revoke_tokens(client.client_id)
    assert revoked.token_revoked(clock.now()) and not revoked.token_revoked(clock.now() + 1)
    assert not (await admin.disable(client.client_id)).active
    assert (await admin.enable(client.client_id)).active
