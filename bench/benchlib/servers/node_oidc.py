"""node-oidc-provider with client_credentials, its in-memory adapter and node:cluster."""

from __future__ import annotations

import shutil

from .. import install
from ..config import CLIENT_SECRET
from ..model import MEMORY, LoadPlan, RunContext, Scenario, ServerSpec
from .base import CC_BODY, Target, client_auth

MODES = {
    "es256": ("jwt ES256", Scenario.CC_JWT),
    "rs256": ("jwt RS256 (default alg)", Scenario.CC_JWT),
    "opaque": ("opaque, in-memory adapter", Scenario.CC_OPAQUE),
}


class NodeOidcTarget(Target):
    family = "node-oidc-provider"
    stores = False
    no_db_label = MEMORY

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.name = f"node-oidc-{mode}"
        self.token, scenario = MODES[mode]
        self.scenarios = frozenset({scenario})

    def unavailable(self) -> str:
        return "" if shutil.which("node") and shutil.which("npm") else "node/npm not installed"

    def install(self) -> None:
        install.node_peer()

    def prepare(self, ctx: RunContext) -> ServerSpec:
        script = install.node_peer()
        env = {
            "PORT": str(ctx.port),
            "WORKERS": str(ctx.workers),
            "TOKEN_MODE": self.mode,
            "CLIENT_SECRET": CLIENT_SECRET,
            "NODE_ENV": "production",
        }
        return ServerSpec(argv=["node", str(script)], env=env, cwd=script.parent)

    def plan(self, ctx: RunContext) -> LoadPlan:
        return LoadPlan(path="/token", auth=client_auth(), body=CC_BODY)
