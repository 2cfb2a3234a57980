"""What every benchmarked server provides."""

from __future__ import annotations

import os
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import postgres
from ..config import CLIENT_ID, CLIENT_SECRET, SCOPE
from ..http import basic_auth
from ..model import NO_DB, LoadPlan, RunContext, Scenario, ServerSpec, Skip

CC_BODY = "grant_type=client_credentials&scope=" + SCOPE.replace(" ", "%20")
REFRESH_SEEDS = 128  # per phase: four tokens per connection keeps every pool non-empty


class Target(ABC):
    """One server configuration (a peer with one token format, the floor, tokensmith)."""

    name: str
    family: str
    token: str
    scenarios: frozenset[Scenario]
    stores: bool = True
    no_db_label: str = NO_DB

    def dbs(self, wanted: Sequence[str]) -> tuple[str, ...]:
        return tuple(wanted) if self.stores else (self.no_db_label,)

    def timing(self, warmup_s: int, duration_s: int) -> None:  # noqa: B027 - most need none
        """The warm-up and measured seconds of each run (a target that makes its requests
        before the run needs them)."""

    def install(self) -> None:  # noqa: B027 - most servers install nothing
        """Fetch what the server needs from the registries (idempotent)."""

    def unavailable(self) -> str:
        """Why this server cannot run at all here, or an empty string."""
        return ""

    @abstractmethod
    def prepare(self, ctx: RunContext) -> ServerSpec:
        """Create the database and client; return how to start the server."""

    @abstractmethod
    def plan(self, ctx: RunContext) -> LoadPlan:
        """With the server up: the request to load it with."""

    def seed_refresh(self, ctx: RunContext, count: int, path: Path) -> None:
        """With the server up: write ``count`` unused refresh tokens to ``path``, one a line
        (the refresh scenario's starting pool, and its top-ups in a stability run)."""
        raise Skip(f"{self.name} has no way to seed refresh tokens")

    def cleanup(self, ctx: RunContext) -> None:
        if ctx.db == "postgres":
            postgres.drop_database(pg_name(self, ctx))


def pg_name(target: Target, ctx: RunContext) -> str:
    return "bench_" + target.name.replace("-", "_")


def fresh_db_url(target: Target, ctx: RunContext, pg_driver: str = "postgresql") -> str:
    """A new empty database for this run: a SQLite file in the run dir, or a PG database."""
    if ctx.db == "postgres":
        name = pg_name(target, ctx)
        postgres.fresh_database(name)
        return postgres.url(name, pg_driver)
    return f"sqlite:///{ctx.run_dir / 'db.sqlite3'}"


def client_auth() -> str:
    return basic_auth(CLIENT_ID, CLIENT_SECRET)


def run_tool(argv: list[str], cwd: Path, env: Mapping[str, str], stdin: str | None = None) -> str:
    """Run a set-up command of a peer; raise with its output when it fails."""
    done = subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {(done.stderr or done.stdout)[-800:]}")
    return done.stdout


def seed_files(ctx: RunContext) -> tuple[Path, Path, Path]:
    """Paths for the check, warm-up and measured-run refresh tokens."""
    folder = ctx.run_dir
    return folder / "seeds-check.txt", folder / "seeds-warmup.txt", folder / "seeds-run.txt"


def seed_all(target: Target, ctx: RunContext) -> None:
    """One token for the check, then a pool each for the warm-up and the measured run."""
    for path, count in zip(seed_files(ctx), (1, REFRESH_SEEDS, REFRESH_SEEDS), strict=True):
        target.seed_refresh(ctx, count, path)


def refresh_plan(path: str, ctx: RunContext) -> LoadPlan:
    check, warmup, run = seed_files(ctx)
    first = check.read_text().split()[0]
    return LoadPlan(
        path=path,
        auth=client_auth(),
        warmup_seeds=warmup,
        run_seeds=run,
        check_body=f"grant_type=refresh_token&refresh_token={first}",
        expect="refresh_token",
    )
