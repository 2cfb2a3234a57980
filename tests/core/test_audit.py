"""The audit seam without storage: what an event may hold, the cursor, the export's
cells, and the purge's retention."""

from __future__ import annotations

import pytest

from tokensmith.core.audit import (
    Audit,
    AuditCursor,
    AuditQuery,
    MemoryAuditTrail,
    csv_row,
    jsonl_row,
)
from tokensmith.core.clock import FrozenClock
from tokensmith.core.purge import purge_once
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.memory import MemoryStore


@pytest.mark.parametrize(
    "key", ["password", "client_secret", "access_token", "Assertion", "private_key", "credential"]
)
async def test_a_detail_named_like_a_secret_is_refused(key: str) -> None:
    trail = MemoryAuditTrail()
    audit = Audit(trail, FrozenClock(), SystemRandomness())
    with pytest.raises(ValueError, match="may carry a secret"):
        await audit.record("client.created", actor="cli", **{key: "x"})
    assert trail.events == []


@pytest.mark.parametrize(
    "value",
    [
        "",
        "nope",
        "1.5",
        "1.5_",
        "_abc",
        "nan_abc",
        "inf_abc",
        "1e400_abc",
        "1_a-b",
        "1_" + "a" * 65,
    ],
)
def test_a_cursor_that_no_page_made_is_refused(value: str) -> None:
    assert AuditCursor.decode(value) is None


def test_a_cursor_round_trips() -> None:
    cursor = AuditCursor(1_700_000_000.123, "ab12")
    assert AuditCursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
async def test_a_csv_cell_a_spreadsheet_would_run_starts_with_a_quote(lead: str) -> None:
    audit = Audit(MemoryAuditTrail(), FrozenClock(), SystemRandomness())
    event = await audit.record("client.created", actor="cli", subject=f"{lead}cmd|calc")
    assert f"'{lead}cmd|calc" in csv_row(event)
    assert f'"subject":"{lead}' in jsonl_row(event).replace("\\t", "\t").replace("\\r", "\r")


async def test_the_purge_deletes_events_past_their_retention_only_when_given_one() -> None:
    store, clock = MemoryStore(), FrozenClock()
    audit = Audit(store, clock, SystemRandomness())
    await audit.record("client.created", actor="cli")
    clock.advance(100)
    await audit.record("client.updated", actor="cli")
    assert (await purge_once(store, clock, 10, 1800)).audit_events == 0
    assert (await purge_once(store, clock, 10, 1800, audit_retention=50)).audit_events == 1
    assert [e.type for e in await store.list_audit(AuditQuery())] == ["client.updated"]
