"""Fresh PostgreSQL databases for each run, through psql on the loopback server."""

from __future__ import annotations

import shutil
import subprocess

from .config import PG_HOST, PG_USER


def _psql(sql: str) -> subprocess.CompletedProcess[str]:
    argv = [
        "psql",
        "-h",
        PG_HOST,
        "-U",
        PG_USER,
        "-d",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-qAt",
        "-c",
        sql,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def available() -> str:
    """Empty string when PostgreSQL answers, else why not."""
    if shutil.which("psql") is None:
        return "psql not installed"
    done = _psql("select 1")
    return "" if done.returncode == 0 else f"PostgreSQL unreachable: {done.stderr.strip()[:200]}"


def fresh_database(name: str) -> None:
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        done = _psql(sql)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {sql}: {done.stderr.strip()}")


def drop_database(name: str) -> None:
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def url(name: str, driver: str = "postgresql") -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:5432/{name}"
