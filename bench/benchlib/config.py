"""Paths and the fixed load settings shared by every server."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO / "bench"
#: Installs and per-run folders; ``BENCH_WORK_DIR`` moves them (the tests use a temporary one).
WORK_DIR = Path(os.environ.get("BENCH_WORK_DIR") or BENCH_DIR / ".work")
RESULTS_DIR = BENCH_DIR / "results"
LUA_DIR = BENCH_DIR / "lua"
PEERS_DIR = BENCH_DIR / "peers"
PROJECT_VENV = REPO / ".venv"

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-7f3c9a1e5d2b8f04c6e1a9d3b7f2c5e8"
SCOPE = "read write"
AUDIENCE = "https://api.bench.local"
TOKENSMITH_SECRET_KEY = "bench-key-encryption-secret-0123456789abcdef"

CONNECTIONS = 32
THREADS = 2
WRK_TIMEOUT_S = 30
PG_HOST = "127.0.0.1"
PG_USER = "postgres"


@dataclass(frozen=True)
class Settings:
    """What one invocation of the harness measures."""

    duration: int = 30
    warmup: int = 5
    workers: tuple[int, ...] = (1, 2)
    dbs: tuple[str, ...] = ("sqlite", "postgres")
    only: tuple[str, ...] = ()
    smoke: bool = False
    install: bool = True
    out_dir: Path = RESULTS_DIR
    quiet_wait: int = 120
    stability: int = 0  # seconds of the stability run (--stability); 0: the usual runs
    rounds: int = 1  # the whole matrix this many times; each cell reports its median run
    argv: tuple[str, ...] = field(default_factory=lambda: tuple(sys.argv[1:]))


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"
