"""The audit events and their webhook outbox (:class:`tokensmith.core.audit.AuditStore`):
one contract for the in-memory store and SQLAlchemy on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from tokensmith.core.audit import AuditCursor, AuditEvent, AuditQuery
from tokensmith.core.ports import Store


def _event(n: int, at: float, **kw: object) -> AuditEvent:
    base: dict[str, object] = {
        "id": f"{n:024x}",
        "at": at,
        "type": "client.created",
        "actor": "cli",
        "merchant_id": "m_a",
        "subject": f"c{n}",
        "details": {"name": "Shop \u00e9\x00", "n": n, "ok": True, "none": None},
    }
    base.update(kw)
    return AuditEvent(**base)  # type: ignore[arg-type]


async def _ids(store: Store, **kw: object) -> list[int]:
    return [int(e.id, 16) for e in await store.list_audit(AuditQuery(**kw))]  # type: ignore[arg-type]


async def test_an_event_round_trips_with_its_details(store: Store) -> None:
    event = _event(1, 100.5, source="203.0.113.9", outcome="failure")
    await store.append_audit(event)
    assert await store.list_audit(AuditQuery()) == [event]


async def test_events_list_newest_first_and_page_by_keyset_across_equal_times(
    store: Store,
) -> None:
    for n, at in enumerate([100.0, 300.0, 200.0, 200.0, 200.0, 50.0], start=1):
        await store.append_audit(_event(n, at))
    assert await _ids(store) == [2, 5, 4, 3, 1, 6]
    page = await store.list_audit(AuditQuery(limit=2))
    seen = [int(e.id, 16) for e in page]
    while page:
        cursor = AuditCursor(page[-1].at, page[-1].id)
        page = await store.list_audit(AuditQuery(limit=2, after=cursor))
        seen += [int(e.id, 16) for e in page]
    assert seen == [2, 5, 4, 3, 1, 6]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"merchant_id": "m_b"}, [3]),
        ({"actor": "user:u_1"}, [2]),
        ({"type": "client"}, [4, 3, 1]),
        ({"type": "client.up"}, [4]),
        ({"type": "login"}, [2]),
        ({"type": "%"}, []),  # a LIKE wildcard matches itself only
        ({"type": "_ogin"}, []),
        ({"since": 200.0}, [4, 3, 2]),
        ({"until": 200.0}, [1]),
        ({"since": 200.0, "until": 400.0, "type": "client"}, [3]),
        ({"merchant_id": "m_a", "actor": "cli", "type": "client.created"}, [1]),
    ],
)
async def test_filters_by_merchant_actor_type_prefix_and_time(
    store: Store, query: dict[str, object], expected: list[int]
) -> None:
    await store.append_audit(_event(1, 100.0))
    await store.append_audit(_event(2, 200.0, type="login.failed", actor="user:u_1"))
    await store.append_audit(_event(3, 300.0, merchant_id="m_b"))
    await store.append_audit(_event(4, 400.0, type="client.updated", merchant_id=None))
    assert await _ids(store, **query) == expected


async def test_purge_deletes_old_events_with_their_outbox_rows_in_batches(store: Store) -> None:
    for n in range(1, 6):
        await store.append_audit(_event(n, 100.0 + n), deliver=True)
    await store.append_audit(_event(9, 500.0), deliver=True)
    assert await store.purge_audit(104.0, 2) == 2
    assert await store.purge_audit(104.0, 10) == 1
    assert await _ids(store) == [9, 5, 4]
    claimed = await store.claim_audit_deliveries("a", 1000.0, 30.0, 10)
    assert sorted(int(c.event_id, 16) for c in claimed) == [4, 5, 9]


async def test_an_event_is_queued_for_the_webhook_only_when_asked(store: Store) -> None:
    await store.append_audit(_event(1, 100.0))
    await store.append_audit(_event(2, 101.0), deliver=True)
    claimed = await store.claim_audit_deliveries("a", 200.0, 30.0, 10)
    assert [c.event_id for c in claimed] == [f"{2:024x}"]
    assert '"type":"client.created"' in claimed[0].body and claimed[0].attempts == 0


async def test_a_claimed_row_is_leased_to_one_owner_until_the_lease_ends(store: Store) -> None:
    await store.append_audit(_event(1, 100.0), deliver=True)
    assert len(await store.claim_audit_deliveries("a", 100.0, 30.0, 10)) == 1
    assert await store.claim_audit_deliveries("b", 120.0, 30.0, 10) == []
    assert await store.finish_audit_delivery(f"{1:024x}", "b") is False  # not b's
    # a's lease ended (a died mid-delivery): b takes the row, and a can no longer finish it
    assert len(await store.claim_audit_deliveries("b", 130.0, 30.0, 10)) == 1
    assert await store.finish_audit_delivery(f"{1:024x}", "a") is False
    assert await store.finish_audit_delivery(f"{1:024x}", "b") is True
    assert await store.claim_audit_deliveries("c", 999.0, 30.0, 10) == []


async def test_parallel_claims_never_give_one_row_to_two_owners(store: Store) -> None:
    for n in range(1, 21):
        await store.append_audit(_event(n, 100.0 + n), deliver=True)
    results = await asyncio.gather(
        *(store.claim_audit_deliveries(f"owner{i}", 500.0, 30.0, 20) for i in range(4))
    )
    ids = [c.event_id for got in results for c in got]
    assert len(ids) == len(set(ids)) == 20


async def test_a_failed_delivery_waits_then_dies_and_an_operator_retries_it(store: Store) -> None:
    eid = f"{1:024x}"
    await store.append_audit(_event(1, 100.0), deliver=True)
    await store.claim_audit_deliveries("a", 100.0, 30.0, 10)
    assert await store.fail_audit_delivery(eid, "b", error="x", next_at=0.0, dead_at=None) is False
    assert await store.fail_audit_delivery(eid, "a", error="HTTP 503", next_at=150.0, dead_at=None)
    assert await store.claim_audit_deliveries("a", 149.0, 30.0, 10) == []
    (again,) = await store.claim_audit_deliveries("a", 150.0, 30.0, 10)
    assert again.attempts == 1 and again.last_error == "HTTP 503"
    assert await store.dead_audit_deliveries(10) == []
    await store.fail_audit_delivery(eid, "a", error="E" * 500, next_at=160.0, dead_at=155.0)
    assert await store.claim_audit_deliveries("a", 10_000.0, 30.0, 10) == []
    (dead,) = await store.dead_audit_deliveries(10)
    assert dead.attempts == 2 and dead.dead_at == 155.0 and dead.last_error == "E" * 200
    assert await store.retry_audit_delivery("f" * 24, 200.0) is False
    assert await store.retry_audit_delivery(eid, 200.0) is True
    assert await store.retry_audit_delivery(eid, 200.0) is False  # live again, not dead
    (retried,) = await store.claim_audit_deliveries("a", 200.0, 30.0, 10)
    assert retried.attempts == 0 and retried.dead_at is None
