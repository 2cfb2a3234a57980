"""CPU per stored access token as SQLite's ``access_tokens`` table grows, without a server.

``.venv/bin/python bench/sqlite_growth.py [--rows 600000] [--batch 16] [--cache-kib 2000]``

The table is created from tokensmith's own schema (``storage/sql/tables.py``: the primary
key on the random token id, the unique random token hash, and the other four indexes), in
WAL mode with ``synchronous=NORMAL`` as the server opens it. Rows go in through Python's
``sqlite3`` in transactions of ``--batch`` rows, about what group commit writes per
transaction under load, so the figures are SQLite's own cost and nothing of tokensmith's.
For each step of ``--step`` rows it prints the process CPU time and the wall time per row;
``--cache-kib`` sets ``PRAGMA cache_size`` (SQLite's default is 2,000 KiB).
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

from tokensmith.storage.sql.tables import access_tokens, metadata

INSERT = "INSERT INTO access_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _create(path: Path) -> None:
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine, tables=[access_tokens])
    engine.dispose()


def _rows(n: int, at: float) -> list[tuple[object, ...]]:
    return [
        (
            secrets.token_urlsafe(16),
            hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
            "bench-client",
            "bench-client",
            "read write",
            None,
            at,
            at + 3600,
            None,
        )
        for _ in range(n)
    ]


def run(path: Path, rows: int, batch: int, step: int, cache_kib: int) -> list[tuple[float, float]]:
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
        db.executemany(INSERT, _rows(batch, time.time()))
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
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="sqlite-growth-") as tmp:
        steps = run(Path(tmp) / "tokens.db", args.rows, args.batch, args.step, args.cache_kib)
    print(f"cache {args.cache_kib} KiB, {args.batch} rows a transaction")
    for i, (cpu, wall) in enumerate(steps, 1):
        span = f"rows {(i - 1) * args.step:>9,} - {i * args.step:>9,}"
        print(f"{span}: {cpu:6.1f} µs CPU, {wall:6.1f} µs wall per row")


if __name__ == "__main__":
    main()
