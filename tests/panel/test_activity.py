"""Integration > API > Activity: per-key counts (hourly, daily) and failed authentications;
the token hot path stays write-free."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.conftest import Harness, make_settings, running_app
from tests.panel.conftest import Browser, Shop, flush, make_shop
from tokensmith.core.clock import FrozenClock
from tokensmith.core.panel_models import TokenCount, hour_of
from tokensmith.storage.sql import SqlStore, make_engine


async def test_tokens_issued_are_charted_per_hour_and_per_day(
    harness: Harness, admin: Browser
) -> None:
    client_id, secret = await admin.create_key("Checkout")
    for _ in range(3):
        assert (await harness.token(client_id, secret)).status_code == 200
    page = await admin.get("/panel/activity")  # counted, not yet written
    assert page.status_code == 200
    assert page.text.count('<g class="bar"') == 24 + 7
    assert re.search(r"<strong>3</strong> tokens issued", page.text)
    assert "<svg" in page.text and "<script>" not in page.text

    await flush(harness)
    rows = await harness.ctx.store.token_counts([client_id], 0)
    assert [r.issued for r in rows] == [3]
    now = hour_of(harness.clock.now())
    await harness.ctx.store.add_token_counts(
        [TokenCount(client_id, now - 30 * 3600, 10), TokenCount(client_id, now - 9 * 86400, 100)]
    )
    page = await admin.get(f"/panel/activity?client_id={client_id}")
    assert re.search(r"<strong>3</strong> tokens issued", page.text)  # the last 24 hours
    assert re.search(r"<strong>13</strong> tokens issued", page.text)  # the last 7 days


async def test_failed_authentications_are_listed_without_the_secret_tried(
    harness: Harness, shop: Shop, admin: Browser, operator: Browser
) -> None:
    client_id, secret = await admin.create_key("Checkout")
    tried = "my-guessed-secret-123"
    assert (await harness.token(client_id, tried)).status_code == 401
    assert (await harness.token("unknownclient", tried)).status_code == 401
    assert (await harness.token(secret, tried)).status_code == 401  # the secret as client_id
    await flush(harness)
    page = await admin.get("/panel/activity")
    assert "Wrong secret" in page.text and client_id in page.text and "203.0.113.7" in page.text
    assert tried not in page.text and "unknownclient" not in page.text
    ops = await operator.get("/panel/activity")
    assert "Unknown client IDs" in ops.text
    fingerprint = harness.ctx.observer.fingerprints.label("unknownclient").rsplit(":", 1)[1]
    assert "13 characters" in ops.text and fingerprint in ops.text and "43 characters" in ops.text
    assert tried not in ops.text and "unknownclient" not in ops.text and secret not in ops.text


async def test_a_jwt_client_credentials_token_writes_nothing_to_the_database(
    harness: Harness, admin: Browser
) -> None:
    client_id, secret = await admin.create_key()
    await harness.token(client_id, secret)  # warms the client cache
    statements: list[str] = []
    engine = harness.ctx.store.engine  # type: ignore[attr-defined]

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        for _ in range(5):
            assert (await harness.token(client_id, secret)).status_code == 200
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    writes = [s for s in statements if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert sum(c.issued for c in harness.ctx.panel.recorder.pending()) == 6


async def test_counts_are_written_by_the_background_job_and_at_shutdown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    clock = FrozenClock(1_800_000_000.0)
    settings = make_settings(tmp_path, url, activity_flush_interval=0.05)
    async with running_app(settings, clock) as h:
        shop = await make_shop(h, "Acme Shop")
        client, secret = await h.client(merchant_id=shop.merchant.merchant_id)
        await h.token(client.client_id, secret)
        for _ in range(100):
            await asyncio.sleep(0.02)
            if await h.ctx.store.token_counts([client.client_id], 0):
                break
        assert [c.issued for c in await h.ctx.store.token_counts([client.client_id], 0)] == [1]
    settings = make_settings(tmp_path, url, activity_flush_interval=0)
    async with running_app(settings, clock) as h:
        await h.token(client.client_id, secret)
        await h.token(client.client_id, "wrong")
    store = SqlStore(make_engine(url))
    try:
        (row,) = await store.token_counts([client.client_id], 0)
        assert (row.issued, row.refused) == (2, 1)
        (failure,) = await store.recent_auth_failures(shop.merchant.merchant_id, 10)
        assert failure.reason == "bad_secret"
    finally:
        await store.close()
