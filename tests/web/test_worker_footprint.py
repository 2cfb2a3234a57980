"""What a server worker holds in memory: the per-worker budget is 120 MB at peak."""

from __future__ import annotations

import ast
import subprocess
import sys

from tokensmith.core.passwords import Passwords

WORKER = """
import sys
from tokensmith.settings import Settings
from tokensmith.web.app import create_app
create_app(Settings(database_url="sqlite:///unused.db", auto_migrate=False))
print(sorted(m for m in ("alembic", "mako", "redis") if m in sys.modules))
"""


def test_a_worker_loads_neither_alembic_nor_the_redis_client() -> None:
    """``tokensmith serve`` migrates before its workers start, and Redis is optional: the
    two cost 17 MB in each worker that does not use them."""
    out = subprocess.run(
        [sys.executable, "-c", WORKER], capture_output=True, text=True, check=True
    ).stdout
    assert ast.literal_eval(out.strip().splitlines()[-1]) == []


async def test_passwords_are_hashed_with_the_owasp_argon2id_parameters() -> None:
    """19 MiB a login, not argon2-cffi's 64 MiB."""
    stored = await Passwords().hash("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await Passwords().verify(stored, "correct horse battery")


async def test_hashes_made_with_other_parameters_still_verify() -> None:
    older = await Passwords(time_cost=3, memory_cost=65536, parallelism=4).hash("long enough pw")
    assert await Passwords().verify(older, "long enough pw")
    assert not await Passwords().verify(older, "wrong password")
