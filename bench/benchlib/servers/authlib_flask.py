"""Authlib's AuthorizationServer on Flask + flask_sqlalchemy, under gunicorn."""

from __future__ import annotations

from pathlib import Path

from .. import install
from ..config import CLIENT_SECRET, PEERS_DIR
from ..http import post_form
from ..model import LoadPlan, RunContext, Scenario, ServerSpec, Skip
from .base import (
    CC_BODY,
    Target,
    client_auth,
    fresh_db_url,
    refresh_plan,
    run_tool,
    seed_all,
)

APP_DIR = PEERS_DIR / "authlib_app"


class AuthlibTarget(Target):
    family = "authlib"

    def __init__(self, mode: str) -> None:
        self.mode = mode
        if mode == "jwt":
            self.name, self.token = "authlib-jwt", "jwt ES256 (rfc9068), stored"
            self.scenarios = frozenset({Scenario.CC_JWT, Scenario.INTROSPECT})
        else:
            self.name, self.token = "authlib", "opaque (default), stored"
            self.scenarios = frozenset({Scenario.CC_OPAQUE, Scenario.REFRESH})
        self.env: dict[str, str] = {}

    def install(self) -> None:
        install.authlib_python()

    def prepare(self, ctx: RunContext) -> ServerSpec:
        python = install.authlib_python()
        self.env = {
            "DATABASE_URL": fresh_db_url(self, ctx, "postgresql+psycopg2"),
            "BENCH_TOKEN_MODE": self.mode,
            "BENCH_JWK_FILE": str(ctx.run_dir / "jwks.json"),
            "BENCH_ISSUER": ctx.base_url,
        }
        if self.mode == "jwt":
            self._tool(python, ["genkey", self.env["BENCH_JWK_FILE"]])
        self._tool(python, ["init", CLIENT_SECRET])
        gunicorn = python.parent / "gunicorn"
        argv = [
            str(gunicorn),
            "-w",
            str(ctx.workers),
            "-b",
            f"127.0.0.1:{ctx.port}",
            "app:create_app()",
        ]
        return ServerSpec(argv=argv, env=self.env, cwd=APP_DIR)

    def _tool(self, python: Path, args: list[str]) -> None:
        run_tool([str(python), "app.py", *args], APP_DIR, self.env)

    def seed_refresh(self, ctx: RunContext, count: int, path: Path) -> None:
        self._tool(install.authlib_python(), ["seed", str(count), str(path)])

    def plan(self, ctx: RunContext) -> LoadPlan:
        if ctx.scenario == Scenario.REFRESH:
            seed_all(self, ctx)
            return refresh_plan("/oauth/token", ctx)
        if ctx.scenario == Scenario.INTROSPECT:
            return introspect_plan(ctx.base_url, "/oauth/token", "/oauth/introspect")
        return LoadPlan(path="/oauth/token", auth=client_auth(), body=CC_BODY)


def introspect_plan(base_url: str, token_path: str, introspect_path: str) -> LoadPlan:
    """Get one access token, then introspect it with the same client."""
    status, data = post_form(base_url + token_path, client_auth(), CC_BODY)
    if status != 200 or "access_token" not in data:
        raise Skip(f"could not get a token to introspect ({status}: {str(data)[:200]})")
    body = "token=" + str(data["access_token"])
    return LoadPlan(path=introspect_path, auth=client_auth(), body=body, expect="active")
