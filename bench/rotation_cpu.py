"""CPU per refresh-token rotation in the store alone, in this process and in PostgreSQL.

``.venv/bin/python bench/rotation_cpu.py [--url postgresql://postgres@127.0.0.1/test]
[--concurrency 32] [--families 128] [--rotations 16000] [--plans custom|auto]
[--keys ordered|random]``

Creates a new database ``bench_rotation`` next to the one in ``--url`` (or uses the SQLite
file given), seeds ``--families`` token families, then rotates their refresh tokens
``--concurrency`` at a time through ``SqlStore.find_refresh_grant`` and
``SqlStore.rotate_refresh_token``, as the refresh grant does. It prints the CPU time of
this process and of all PostgreSQL backends per rotation, and rotations per second.
``--plans auto`` connects with PostgreSQL's default plan caching instead of the plans
made for each run that ``make_engine`` asks for, to show what that setting is worth.
``--keys random`` stores tokens under random keys and ids, as the server did before they
began with their issue time (``core/credentials.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import time
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tokensmith.core.credentials import new_token, new_token_id, token_key
from tokensmith.core.models import AccessTokenRecord, Merchant, RefreshTokenRecord
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.sql import SqlStore, make_engine, migrate
from tokensmith.storage.sql.engine import normalize_url
from tokensmith.storage.sql.tables import refresh_tokens, token_families

RAND = SystemRandomness()

DB = "bench_rotation"


def _postgres_ticks() -> int:
    """User+system clock ticks of every process named ``postgres``."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if "(postgres)" in stat:
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total


def _fresh_database(url: str) -> str:
    if not url.startswith("postgresql"):
        return url
    for sql in (f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}"):
        subprocess.run(["psql", url, "-qc", sql], check=True, capture_output=True)
    return url.rsplit("/", 1)[0] + "/" + DB


def _engine(url: str, plans: str) -> AsyncEngine:
    if plans == "custom" or not url.startswith("postgresql"):
        return make_engine(url)
    settings: dict[str, Any] = {"server_settings": {"plan_cache_mode": "auto"}}
    return create_async_engine(
        normalize_url(url), pool_size=20, max_overflow=0, connect_args=settings
    )


async def _seed(store: SqlStore, families: int, now: float) -> dict[str, str]:
    await store.add_merchant(Merchant("m1", "Shop", now))
    live = {f"f{i}": secrets.token_hex(32) for i in range(families)}
    family = {
        "client_id": "c",
        "merchant_id": "m1",
        "user_id": "u",
        "scope": "read",
        "created_at": now,
        "expires_at": now + 1e6,
        "absolute_expires_at": now + 1e7,
    }
    token = {"client_id": "c", "scope": "read", "issued_at": now, "expires_at": now + 1e6}
    async with store.engine.begin() as conn:
        await conn.execute(insert(token_families), [{"family_id": f} | family for f in live])
        rows = [{"token_hash": h, "family_id": f} | token for f, h in live.items()]
        await conn.execute(insert(refresh_tokens), rows)
    return live


def _keys(at: float, ordered: bool) -> tuple[str, str, str]:
    """A refresh token's key, an access token's id and its key."""
    if ordered:
        return (
            token_key(new_token(RAND, at)),
            new_token_id(RAND, at),
            token_key(new_token(RAND, at)),
        )
    return secrets.token_hex(32), secrets.token_hex(16), secrets.token_hex(32)


async def _rotate(store: SqlStore, live: dict[str, str], fid: str, ordered: bool) -> None:
    at = time.time()
    old, (new, jti, access_key) = live[fid], _keys(at, ordered)
    assert await store.find_refresh_grant(old) is not None
    record = RefreshTokenRecord(new, fid, "c", "read", at, at + 1e6, access_jti=jti)
    access = AccessTokenRecord(jti, "c", "m1", "read", at, at + 3600, access_key, fid)
    assert await store.rotate_refresh_token(old, record, at, access)
    live[fid] = new


async def main(args: argparse.Namespace) -> None:
    url = _fresh_database(args.url)
    store = SqlStore(_engine(url, args.plans))
    await migrate(store.engine)
    live = await _seed(store, args.families, time.time())
    fids = list(live)
    per_lane = args.families // args.concurrency  # each lane owns its families

    async def lane(k: int, count: int) -> None:
        for r in range(count):
            fid = fids[k + args.concurrency * (r % per_lane)]
            await _rotate(store, live, fid, args.keys == "ordered")

    rounds = args.rotations // args.concurrency
    await asyncio.gather(*(lane(k, max(1, rounds // 10)) for k in range(args.concurrency)))
    cpu, pg, wall = time.process_time(), _postgres_ticks(), time.perf_counter()
    await asyncio.gather(*(lane(k, rounds) for k in range(args.concurrency)))
    cpu, pg = time.process_time() - cpu, _postgres_ticks() - pg
    wall = time.perf_counter() - wall
    n = rounds * args.concurrency
    print(
        f"{n} rotations, {args.concurrency} at a time: {1e6 * cpu / n:.0f} us CPU here, "
        f"{1e6 * pg / 100 / n:.0f} us CPU in PostgreSQL, {n / wall:,.0f} rotations/s"
    )
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--families", type=int, default=128)
    parser.add_argument("--rotations", type=int, default=16000)
    parser.add_argument("--plans", choices=("custom", "auto"), default="custom")
    parser.add_argument("--keys", choices=("ordered", "random"), default="ordered")
    arguments = parser.parse_args()
    if arguments.families % arguments.concurrency:
        parser.error("--families must be a multiple of --concurrency")
    asyncio.run(main(arguments))
