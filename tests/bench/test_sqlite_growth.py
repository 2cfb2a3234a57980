"""``bench/sqlite_growth.py`` keeps working: tokensmith's own table, rows in, one line a step."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import sqlite_growth


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "random"])
def test_growth_inserts_every_row_and_reports_each_step(tmp_path: Path, ordered: bool) -> None:
    path = tmp_path / "tokens.db"
    steps = sqlite_growth.run(path, rows=640, batch=16, step=320, cache_kib=2000, ordered=ordered)
    assert len(steps) == 2 and all(cpu > 0 and wall > 0 for cpu, wall in steps)
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(DISTINCT token_hash) FROM access_tokens").fetchone() == (640,)
    indexes = {row[1]: row[4] for row in db.execute("PRAGMA index_list('access_tokens')")}
    # the primary key, the unique hash, the expiry and two partial ones, as migrated
    assert len(indexes) == 5 and sorted(indexes.values()) == [0, 0, 0, 1, 1]


def test_ordered_keys_go_in_issue_order(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    sqlite_growth.run(path, rows=64, batch=16, step=32, cache_kib=2000, ordered=True)
    db = sqlite3.connect(path)
    rows = db.execute("SELECT jti, token_hash FROM access_tokens ORDER BY rowid").fetchall()
    assert [r[0][:12] for r in rows] == sorted(r[0][:12] for r in rows)
    assert [r[1][:12] for r in rows] == sorted(r[1][:12] for r in rows)
