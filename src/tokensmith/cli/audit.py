"""``tokensmith audit``: list and export the audit events (``docs/audit.md``)."""

from __future__ import annotations

import datetime as dt
import re
import sys

import click

from tokensmith.cli._common import Env, db_options, emit, json_option, table, with_env
from tokensmith.core.admin import AdminError
from tokensmith.core.audit import (
    CSV_COLUMNS,
    AuditQuery,
    csv_line,
    csv_row,
    event_json,
    iso_time,
    jsonl_row,
)

__all__ = ["audit"]

_AGO = re.compile(r"(\d{1,6})([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(value: str | None, now: float) -> float | None:
    """``--since``/``--until``: an ISO 8601 date or time (UTC unless it says), or a time
    ago (``30m``, ``24h``, ``7d``)."""
    if value is None:
        return None
    ago = _AGO.fullmatch(value.strip())
    if ago:
        return now - int(ago.group(1)) * _UNIT[ago.group(2)]
    try:
        stamp = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AdminError(f"{value!r} is neither an ISO 8601 time nor a time ago (7d)") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


@click.group("audit")
def audit() -> None:
    """List and export audit events."""


def _filters(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option("--until", default=None, help="Before this time (ISO 8601 or 7d).")(fn)
    fn = click.option(
        "--since", default=None, help="From this time on (ISO 8601, or ago: 30m, 24h, 7d)."
    )(fn)
    fn = click.option("--actor", default=None, help="user:<id>, client:<id>, cli, system...")(fn)
    fn = click.option("--type", "type_", default=None, help="A type or prefix (client).")(fn)
    fn = click.option("--merchant", default=None, help="Merchant id or name.")(fn)
    return fn


async def _query(
    env: Env,
    merchant: str | None,
    type_: str | None,
    actor: str | None,
    since: str | None,
    until: str | None,
    limit: int,
) -> AuditQuery:
    now = env.clock.now()
    return AuditQuery(
        merchant_id=await env.merchant_id(merchant),
        actor=actor or None,
        type=type_ or None,
        since=parse_time(since, now),
        until=parse_time(until, now),
        limit=limit,
    )


@audit.command("list")
@_filters
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@json_option
@db_options
@with_env
async def list_(
    env: Env,
    merchant: str | None,
    type_: str | None,
    actor: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The newest events matching the filters, newest first."""
    query = await _query(env, merchant, type_, actor, since, until, limit)
    events, _ = await env.admin.audit.page(query)
    rows = [
        [iso_time(e.at), e.type, e.actor, e.outcome, e.merchant_id or "-", e.subject or "-"]
        for e in events
    ]
    emit(
        [event_json(e) for e in events],
        as_json,
        table(rows, ["AT", "TYPE", "ACTOR", "OUTCOME", "MERCHANT", "SUBJECT"]),
    )


@audit.command("export")
@_filters
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="jsonl", show_default=True
)
@db_options
@with_env
async def export(
    env: Env,
    merchant: str | None,
    type_: str | None,
    actor: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
) -> None:
    """Every event matching the filters to standard output, newest first, as CSV or
    JSON Lines, read and written a page at a time."""
    query = await _query(env, merchant, type_, actor, since, until, 500)
    out = sys.stdout
    if fmt == "csv":
        out.write(csv_line(CSV_COLUMNS))
    async for event in env.admin.audit.stream(query):
        out.write(csv_row(event) if fmt == "csv" else jsonl_row(event))
    out.flush()
