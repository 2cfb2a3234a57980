"""Team > Audit: operators see every merchant's events, a merchant's admins their own,
members nothing; filters, paging, the CSV and JSON Lines exports of the whole filter,
and the webhook's dead letters with their retry (operators only, CSRF-checked)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from tests.conftest import Harness
from tests.panel.conftest import Browser, Shop
from tokensmith.core.audit import AuditQuery


async def _record(
    h: Harness, n: int, merchant_id: str | None, type_: str = "client.created"
) -> None:
    for i in range(n):
        await h.ctx.audit.record(
            type_, actor="cli", merchant_id=merchant_id, subject=f"c_{merchant_id}_{i}"
        )


async def test_an_admin_sees_their_merchants_events_only(
    harness: Harness, shop: Shop, other: Shop, admin: Browser
) -> None:
    await _record(harness, 2, shop.merchant.merchant_id)
    await _record(harness, 2, other.merchant.merchant_id)
    page = await admin.get("/panel/audit")
    assert page.status_code == 200
    assert f"c_{shop.merchant.merchant_id}_0" in page.text
    assert other.merchant.merchant_id not in page.text
    assert "login.succeeded" in page.text and shop.admin.email in page.text
    # the operator's merchant filter does not widen an admin's view
    page = await admin.get(f"/panel/audit?merchant={other.merchant.merchant_id}")
    assert other.merchant.merchant_id not in page.text
    export = await admin.get("/panel/audit/export?format=jsonl")
    merchants = {json.loads(line)["merchant_id"] for line in export.text.splitlines()}
    assert merchants == {shop.merchant.merchant_id}


async def test_a_member_neither_sees_nor_exports_the_audit_log(
    harness: Harness, shop: Shop, member: Browser
) -> None:
    await _record(harness, 1, shop.merchant.merchant_id)
    assert (await member.get("/panel/audit")).status_code == 403
    export = await member.get("/panel/audit/export?format=csv")
    assert export.status_code == 403 and "client.created" not in export.text
    assert 'href="/panel/audit"' not in (await member.get("/panel/users")).text


async def test_an_operator_sees_every_merchant_and_narrows_to_one(
    harness: Harness, shop: Shop, other: Shop, operator: Browser
) -> None:
    await _record(harness, 1, shop.merchant.merchant_id)
    await _record(harness, 1, other.merchant.merchant_id)
    text = (await operator.get("/panel/audit")).text
    assert shop.merchant.merchant_id in text and other.merchant.merchant_id in text
    text = (await operator.get(f"/panel/audit?merchant={other.merchant.merchant_id}")).text
    assert f"c_{other.merchant.merchant_id}_0" in text
    assert f"c_{shop.merchant.merchant_id}_0" not in text
    assert (await operator.get("/panel/audit?merchant=m_nope")).status_code == 400


async def test_filters_by_type_prefix_and_actor(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    mid = shop.merchant.merchant_id
    await _record(harness, 1, mid, "client.created")
    await _record(harness, 1, mid, "apikey.created")
    text = (await admin.get("/panel/audit?type=apikey")).text
    assert "apikey.created" in text and "client.created" not in text
    text = (await admin.get("/panel/audit?actor=cli")).text
    assert "login.succeeded" not in text and "client.created" in text


@pytest.mark.parametrize(
    "query",
    ["type=%00", "type=" + "a" * 65, "actor=a%20b", "after=nope", "after=1e400_abc", "after=1_%00"],
)
async def test_a_bad_filter_is_a_clear_400(admin: Browser, query: str) -> None:
    r = await admin.get(f"/panel/audit?{query}")
    assert r.status_code == 400 and "Bad filter" in r.text


async def test_pages_follow_one_another_without_gaps(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    await _record(harness, 120, shop.merchant.merchant_id)
    seen: list[str] = []
    url = "/panel/audit?actor=cli"
    while url:
        text = (await admin.get(url)).text
        seen += [
            line.split("<code>")[1].split("</code>")[0]
            for line in text.splitlines()
            if '<td data-label="Subject"><code>' in line
        ]
        older = re.search(r'href="(/panel/audit\?[^"]*after=[^"]*)"', text)
        url = older.group(1).replace("&amp;", "&") if older else ""
    assert len(seen) == len(set(seen)) == 120


async def test_the_exports_hold_every_event_of_the_filter(
    harness: Harness, shop: Shop, admin: Browser
) -> None:
    mid = shop.merchant.merchant_id
    await _record(harness, 700, mid)  # more than one page of the stream
    await harness.ctx.audit.record(
        "client.created", actor="cli", merchant_id=mid, subject="=HYPERLINK(1)", name="@SUM(1)"
    )
    r = await admin.get("/panel/audit/export?type=client&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="audit.csv"' in r.headers["content-disposition"]
    assert r.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 701 and {row["type"] for row in rows} == {"client.created"}
    formula = next(row for row in rows if "HYPERLINK" in row["subject"])
    assert formula["subject"] == "'=HYPERLINK(1)"  # a spreadsheet shows it as text
    r = await admin.get("/panel/audit/export?format=jsonl")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert len(lines) == 702  # and the admin's login
    assert [x["at"] for x in lines] == sorted((x["at"] for x in lines), reverse=True)
    assert (await admin.get("/panel/audit/export?format=xml")).status_code == 400


async def test_an_operator_retries_a_dead_delivery_with_a_csrf_checked_post(
    harness: Harness, shop: Shop, admin: Browser, operator: Browser
) -> None:
    store = harness.ctx.store
    event = await harness.ctx.audit.record("client.created", actor="cli")
    await store.append_audit(
        type(event)(id="d" * 24, at=event.at, type="user.created", actor="cli"), deliver=True
    )
    (claimed,) = await store.claim_audit_deliveries("x", event.at, 30, 10)
    await store.fail_audit_delivery(
        claimed.event_id, "x", error="HTTP 500", next_at=event.at, dead_at=event.at
    )
    assert (await admin.get("/panel/audit/deliveries")).status_code == 404
    page = await operator.get("/panel/audit/deliveries")
    assert "d" * 24 in page.text and "HTTP 500" in page.text
    url = f"/panel/audit/deliveries/{'d' * 24}/retry"
    assert (await operator.post(url, {"x": "1"}, csrf=False)).status_code == 403
    assert (await admin.post(url)).status_code == 404
    assert (await operator.post(url)).status_code == 303
    assert await harness.ctx.audit.dead_letters() == []
    assert (await operator.post(url)).status_code == 404  # nothing dead any more
    retried, _ = await harness.ctx.audit.page(AuditQuery(type="audit.delivery_retried"))
    assert [(e.actor, e.subject) for e in retried] == [(f"user:{operator.user.user_id}", "d" * 24)]
