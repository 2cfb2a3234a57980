"""CPU per stored access token as SQLite's ``access_tokens`` table grows, without a server.

``.venv/bin/python bench/sqlite_growth.py [--rows 600000] [--batch 16] [--cache-kib 2000]
[--keys ordered|random]``

The table is created from tokensmith's own schema (``storage/sql/tables.py``: the primary
key on the token id, the unique token key, the expiry index, and the two partial indexes
of family and revocation, which tokens without either skip), in
WAL mode with ``synchronous=NORMAL`` as the server opens it. Rows go in through Python's
``sqlite3`` in transactions of ``--batch`` rows, about what group commit writes per
transaction under load, so the figures are SQLite's own cost and nothing of tokensmith's.
For each step of ``--step`` rows it prints the process CPU time and the wall time per row;
``--cache-kib`` sets ``PRAGMA cache_size`` (SQLite's default is 2,000 KiB).

``--keys ordered`` (the default) makes token ids and keys as the server does
(``core/credentials.py``: the issue millisecond first); ``--keys random`` as it did before,
128 and 256 random bits, whose rows land on random pages of both unique indexes.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sqlite3
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine

from tokensmith.core.credentials import new_token, new_token_id, token_key
from tokensmith.core.randomness import SystemRandomness
from tokensmith.storage.sql.tables import access_tokens, metadata

RAND = SystemRandomness()

#: The columns named, so that a column added later (nullable) leaves the script working.
INSERT = (
    "INSERT INTO access_tokens (jti, token_hash, client_id, subject, scope, family_id, "
    "issued_at, expires_at, revoked_at, issuer_tag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: The issuer tag every row carries since migration 0006.
TAG = "0123456789abcdef"


def _create(path: Path) -> None:
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine, tables=[access_tokens])
    engine.dispose()


def _ids(at: float, ordered: bool) -> tuple[str, str]:
    """A token id and the key its token is stored under."""
    if ordered:
        return new_token_id(RAND, at), token_key(new_token(RAND, at))
    return secrets.token_urlsafe(16), hashlib.sha256(secrets.token_bytes(32)).hexdigest()


def _rows(n: int, at: float, ordered: bool) -> list[tuple[object, ...]]:
    return [
        (
            *_ids(at, ordered),
            "bench-client",
            "bench-client",
            "read write",
            None,
            at,
            at + 3600,
            None,
            TAG,
        )
        for _ in range(n)
    ]


def run(
    path: Path, rows: int, batch: int, step: int, cache_kib: int, ordered: bool = True
) -> list[tuple[float, float]]:
    """(CPU µs, wall µs) per row for each step of ``step`` rows."""
    _create(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA cache_size=-{cache_kib}")
    steps: list[tuple[float, float]] = []
    cpu, wall = time.process_time(), time.perf_counter()
    for done in range(batch, rows + 1, batch):
        db.execute("BEGIN")
        db.executemany(INSERT, _rows(batch, time.time(), ordered))
        db.execute("COMMIT")
        if done % step < batch:
            now_cpu, now_wall = time.process_time(), time.perf_counter()
            steps.append(((now_cpu - cpu) / step * 1e6, (now_wall - wall) / step * 1e6))
            cpu, wall = now_cpu, now_wall
    db.close()
    return steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=600_000)
    p.add_argument("--batch", type=int, default=16, help="rows per transaction")
    p.add_argument("--step", type=int, default=100_000, help="rows per printed line")
    p.add_argument("--cache-kib", type=int, default=2000, help="PRAGMA cache_size in KiB")
    p.add_argument("--keys", choices=["ordered", "random"], default="ordered")
    args = p.parse_args()
    ordered = args.keys == "ordered"
    with tempfile.TemporaryDirectory(prefix="sqlite-growth-") as tmp:
        path = Path(tmp) / "tokens.db"
        steps = run(path, args.rows, args.batch, args.step, args.cache_kib, ordered)
    print(f"{args.keys} keys, cache {args.cache_kib} KiB, {args.batch} rows a transaction")
    for i, (cpu, wall) in enumerate(steps, 1):
        span = f"rows {(i - 1) * args.step:>9,} - {i * args.step:>9,}"
        print(f"{span}: {cpu:6.1f} µs CPU, {wall:6.1f} µs wall per row")


if __name__ == "__main__":
    main()
