"""tokensmith itself, driven through its CLI from the project venv.

The adapter only uses the public CLI and HTTP endpoints: ``tokensmith clients create
... --json`` and ``tokensmith serve``. For the refresh scenario it also creates a merchant
and an admin user of it, and a client allowed ``authorization_code`` and
``refresh_token``; its refresh tokens come from the code flow over HTTP (log in, allow
once with "remember", then one authorization and code exchange per token, see
``benchlib/authcode.py``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .. import authcode
from ..config import PROJECT_VENV, SCOPE, TOKENSMITH_SECRET_KEY
from ..http import basic_auth, post_form
from ..model import LoadPlan, RunContext, Scenario, ServerSpec, Skip
from .base import CC_BODY, Target, fresh_db_url, run_tool, seed_all, seed_files

CLI = PROJECT_VENV / "bin" / "tokensmith"
TOKEN_PATH = "/oauth/token"
INTROSPECT_PATH = "/oauth/introspect"
REDIRECT_URI = "http://127.0.0.1:9/cb"  # never visited: the code is read from Location
USER_EMAIL = "bench@bench.test"
USER_PASSWORD = "bench-user-password-4e8d2a"


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
        self.app: authcode.PartnerApp | None = None
        self.browser: authcode.Browser | None = None

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
        refresh = ctx.scenario == Scenario.REFRESH
        self.app = self._partner_app(client["client_id"]) if refresh else None
        self.browser = None
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

    def _cli(self, ctx: RunContext, args: list[str], stdin: str | None = None) -> dict[str, str]:
        data = json.loads(run_tool([str(CLI), *args, "--json"], ctx.run_dir, self.env, stdin))
        return {key: str(value) for key, value in data.items()}

    def _create_client(self, ctx: RunContext) -> dict[str, str]:
        """The client (for refresh: with the merchant and user that authorize it)."""
        args = ["clients", "create", "--name", "bench", "--scope", SCOPE]
        args += ["--token-format", self.format]
        if ctx.scenario == Scenario.REFRESH:
            merchant = self._create_merchant_and_user(ctx)
            args += ["--grant-type", "authorization_code", "--grant-type", "refresh_token"]
            args += ["--redirect-uri", REDIRECT_URI, "--merchant", merchant]
        data = self._cli(ctx, args)
        return {"client_id": data["client_id"], "client_secret": data["client_secret"]}

    def _create_merchant_and_user(self, ctx: RunContext) -> str:
        merchant = self._cli(ctx, ["merchants", "create", "--name", "Bench"])["merchant_id"]
        user = ["users", "create", "--merchant", merchant, "--email", USER_EMAIL]
        self._cli(ctx, [*user, "--password-stdin", "--role", "admin"], USER_PASSWORD + "\n")
        return merchant

    def _partner_app(self, client_id: str) -> authcode.PartnerApp:
        return authcode.PartnerApp(
            client_id=client_id,
            auth=self.auth,
            redirect_uri=REDIRECT_URI,
            scope=SCOPE,
            email=USER_EMAIL,
            password=USER_PASSWORD,
        )

    def plan(self, ctx: RunContext) -> LoadPlan:
        if ctx.scenario == Scenario.REFRESH:
            return self._refresh_plan(ctx)
        if ctx.scenario == Scenario.INTROSPECT:
            return self._introspect_plan(ctx)
        audited = INTROSPECT_PATH if self.format == "opaque" else ""
        return LoadPlan(path=TOKEN_PATH, auth=self.auth, body=CC_BODY, introspect_path=audited)

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
        seed_all(self, ctx)
        check, warmup, run = seed_files(ctx)
        first = check.read_text().split()[0]
        return LoadPlan(
            path=TOKEN_PATH,
            auth=self.auth,
            warmup_seeds=warmup,
            run_seeds=run,
            check_body=f"grant_type=refresh_token&refresh_token={first}",
            expect="refresh_token",
            introspect_path=INTROSPECT_PATH,
        )

    def seed_refresh(self, ctx: RunContext, count: int, path: Path) -> None:
        """Refresh tokens from the authorization-code flow, over one keep-alive connection
        whose login session and remembered consent serve every authorization after the
        first."""
        if self.app is None:
            raise Skip("the refresh client was not created")
        if self.browser is None:
            self.browser = authcode.Browser(ctx.base_url)
        tokens = authcode.refresh_tokens(self.browser, self.app, count)
        path.write_text("\n".join(tokens) + "\n")

    def cleanup(self, ctx: RunContext) -> None:
        if self.browser is not None:
            self.browser.close()
            self.browser = None
        super().cleanup(ctx)
