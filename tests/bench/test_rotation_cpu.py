"""``bench/rotation_cpu.py`` keeps working: every rotation succeeds and one line reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import PG_URL

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "rotation_cpu.py"


def _run(url: str, *extra: str) -> str:
    argv = [sys.executable, str(SCRIPT), "--url", url, *extra]
    argv += ["--concurrency", "4", "--families", "8", "--rotations", "80"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("keys", ["ordered", "random"])
def test_rotation_cpu_reports_on_sqlite(tmp_path: Path, keys: str) -> None:
    out = _run(f"sqlite:///{tmp_path / 'rotation.db'}", "--keys", keys)
    assert "80 rotations, 4 at a time" in out and "rotations/s" in out


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="TOKENSMITH_TEST_POSTGRES_URL not set")
def test_rotation_cpu_reports_on_postgres() -> None:
    out = _run(PG_URL or "")
    assert "us CPU in PostgreSQL" in out
