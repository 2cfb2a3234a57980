"""tokensmith itself, driven through its CLI from the project venv.

The adapter only uses the public CLI and HTTP endpoints:
``tokensmith clients create ... --json`` and ``tokensmith serve``; the refresh scenario
runs once the server answers ``grant_type=refresh_token`` with something other than
``unsupported_grant_type`` and issues refresh tokens it can start from.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ..config import PROJECT_VENV, SCOPE, TOKENSMITH_SECRET_KEY
from ..http import basic_auth, post_form
from ..model import LoadPlan, RunContext, Scenario, ServerSpec, Skip
from .base import CC_BODY, REFRESH_SEEDS, Target, fresh_db_url, run_tool, seed_files

CLI = PROJECT_VENV / "bin" / "tokensmith"
TOKEN_PATH = "/oauth/token"
INTROSPECT_PATH = "/oauth/introspect"


class TokensmithTarget(Target):
    family = "tokensmith"

    def __init__(self, token_format: str) -> None:
        self.format = token_format
        self.name = f"tokensmith-{token_format}"
        if token_format == "jwt":
            self.token = "jwt ES256"
            self.scenarios = frozenset({Scenario.CC_JWT, Scenario.INTROSPECT})
        else:
            self.token = "opaque, stored"
            self.scenarios = frozenset({Scenario.CC_OPAQUE, Scenario.REFRESH})
        self.auth = ""
        self.env: dict[str, str] = {}

    def unavailable(self) -> str:
        if not CLI.exists():
            return f"tokensmith CLI not installed at {CLI}"
        done = subprocess.run([str(CLI), "--help"], capture_output=True, text=True, check=False)
        if done.returncode != 0 or "serve" not in done.stdout or "clients" not in done.stdout:
            return "tokensmith CLI lacks 'serve'/'clients' yet"
        return ""

    def prepare(self, ctx: RunContext) -> ServerSpec:
        url = fresh_db_url(self, ctx)
        self.env = {"TOKENSMITH_DATABASE_URL": url, "TOKENSMITH_SECRET_KEY": TOKENSMITH_SECRET_KEY}
        client = self._create_client(ctx)
        self.auth = basic_auth(client["client_id"], client["client_secret"])
        argv = [
            str(CLI),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(ctx.port),
            "--workers",
            str(ctx.workers),
            "--database-url",
            url,
            "--issuer",
            ctx.base_url,
        ]
        return ServerSpec(argv=argv, env=self.env, cwd=ctx.run_dir)

    def _create_client(self, ctx: RunContext) -> dict[str, str]:
        argv = [
            str(CLI),
            "clients",
            "create",
            "--name",
            "bench",
            "--scope",
            SCOPE,
            "--token-format",
            self.format,
            "--json",
        ]
        if ctx.scenario == Scenario.REFRESH:
            argv += ["--grant-type", "client_credentials", "--grant-type", "refresh_token"]
        data = json.loads(run_tool(argv, ctx.run_dir, self.env))
        return {"client_id": data["client_id"], "client_secret": data["client_secret"]}

    def plan(self, ctx: RunContext) -> LoadPlan:
        if ctx.scenario == Scenario.REFRESH:
            return self._refresh_plan(ctx)
        if ctx.scenario == Scenario.INTROSPECT:
            return self._introspect_plan(ctx)
        return LoadPlan(path=TOKEN_PATH, auth=self.auth, body=CC_BODY)

    def _introspect_plan(self, ctx: RunContext) -> LoadPlan:
        status, data = post_form(ctx.base_url + TOKEN_PATH, self.auth, CC_BODY)
        if status != 200 or "access_token" not in data:
            raise Skip(f"could not get a token to introspect ({status}: {str(data)[:200]})")
        body = "token=" + str(data["access_token"])
        return LoadPlan(path=INTROSPECT_PATH, auth=self.auth, body=body, expect="active")

    def _refresh_plan(self, ctx: RunContext) -> LoadPlan:
        probe = "grant_type=refresh_token&refresh_token=bench-probe-not-a-token"
        _, data = post_form(ctx.base_url + TOKEN_PATH, self.auth, probe)
        if data.get("error") == "unsupported_grant_type":
            raise Skip("refresh_token grant not implemented yet (unsupported_grant_type)")
        paths = seed_files(ctx)
        for path, count in zip(paths, (1, REFRESH_SEEDS, REFRESH_SEEDS), strict=True):
            self._seed_refresh_tokens(ctx, count, path)
        first = paths[0].read_text().split()[0]
        return LoadPlan(
            path=TOKEN_PATH,
            auth=self.auth,
            warmup_seeds=paths[1],
            run_seeds=paths[2],
            check_body=f"grant_type=refresh_token&refresh_token={first}",
            expect="refresh_token",
        )

    def _seed_refresh_tokens(self, ctx: RunContext, count: int, path: Path) -> None:
        """Collect refresh tokens from client_credentials answers (the seeding path
        to adapt if tokensmith only issues them through authorization_code)."""
        tokens = []
        for _ in range(count):
            status, data = post_form(ctx.base_url + TOKEN_PATH, self.auth, CC_BODY)
            if status != 200 or "refresh_token" not in data:
                raise Skip("no refresh_token in client_credentials answers to start from")
            tokens.append(str(data["refresh_token"]))
        path.write_text("\n".join(tokens) + "\n")
