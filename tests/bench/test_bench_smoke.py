"""The benchmark harness end to end in its smoke mode (floor app, tokensmith; no peers)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed"),
]


def test_bench_smoke(tmp_path: Path) -> None:
    argv = [
        sys.executable,
        str(REPO / "bench" / "run.py"),
        "--smoke",
        "--out",
        str(tmp_path),
        "--name",
        "smoke",
    ]
    env = os.environ | {"BENCH_WORK_DIR": str(tmp_path / "work")}  # run folders out of the tree
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90, cwd=REPO, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    doc = json.loads((tmp_path / "smoke.json").read_text())
    floor = next(r for r in doc["results"] if r["server"] == "floor")
    assert floor["status"] == "ok"
    assert floor["requests"] > 0
    assert floor["non2xx"] == 0 and floor["socket_errors"] == 0
    for row in doc["results"]:
        assert row["status"] in ("ok", "skipped"), row
        if row["status"] == "ok":
            assert row["non2xx"] == 0, row
    assert "| floor |" in (tmp_path / "smoke.md").read_text()
