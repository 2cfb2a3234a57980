"""django-oauth-toolkit with its default settings, under gunicorn."""

from __future__ import annotations

from pathlib import Path

from .. import install, postgres
from ..config import CLIENT_SECRET, PEERS_DIR
from ..model import LoadPlan, RunContext, Scenario, ServerSpec
from .authlib_flask import introspect_plan
from .base import (
    CC_BODY,
    Target,
    client_auth,
    pg_name,
    refresh_plan,
    run_tool,
    seed_all,
)

PROJECT_DIR = PEERS_DIR / "dot_project"


class DotTarget(Target):
    family = "django-oauth-toolkit"

    def __init__(self, hashed_secret: bool) -> None:
        self.hashed = hashed_secret
        if hashed_secret:
            self.name, self.token = "dot", "opaque, stored (defaults)"
            self.scenarios = frozenset({Scenario.CC_OPAQUE, Scenario.REFRESH, Scenario.INTROSPECT})
        else:
            self.name, self.token = "dot-plainsecret", "opaque, stored, hash_client_secret=False"
            self.scenarios = frozenset({Scenario.CC_OPAQUE, Scenario.REFRESH})
        self.env: dict[str, str] = {}

    def install(self) -> None:
        install.dot_python()

    def prepare(self, ctx: RunContext) -> ServerSpec:
        python = install.dot_python()
        self.env = {"DJANGO_SETTINGS_MODULE": "dotbench.settings", **self._db_env(ctx)}
        self._tool(python, ["init", CLIENT_SECRET, "hashed" if self.hashed else "plain"])
        gunicorn = python.parent / "gunicorn"
        argv = [
            str(gunicorn),
            "-w",
            str(ctx.workers),
            "-b",
            f"127.0.0.1:{ctx.port}",
            "dotbench.wsgi",
        ]
        return ServerSpec(argv=argv, env=self.env, cwd=PROJECT_DIR)

    def _db_env(self, ctx: RunContext) -> dict[str, str]:
        if ctx.db == "postgres":
            postgres.fresh_database(pg_name(self, ctx))
            return {"BENCH_DB_ENGINE": "postgres", "BENCH_DB": pg_name(self, ctx)}
        return {"BENCH_DB_ENGINE": "sqlite", "BENCH_DB": str(ctx.run_dir / "db.sqlite3")}

    def _tool(self, python: Path, args: list[str]) -> None:
        run_tool([str(python), "tools.py", *args], PROJECT_DIR, self.env)

    def seed_refresh(self, ctx: RunContext, count: int, path: Path) -> None:
        self._tool(install.dot_python(), ["seed", str(count), str(path)])

    def plan(self, ctx: RunContext) -> LoadPlan:
        if ctx.scenario == Scenario.REFRESH:
            seed_all(self, ctx)
            return refresh_plan("/o/token/", ctx)
        if ctx.scenario == Scenario.INTROSPECT:
            return introspect_plan(ctx.base_url, "/o/token/", "/o/introspect/")
        return LoadPlan(path="/o/token/", auth=client_auth(), body=CC_BODY)
