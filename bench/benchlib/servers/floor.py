"""The floor reference: bench/floor_app.py on uvicorn, configured like tokensmith."""

from __future__ import annotations

from pathlib import Path

from .. import install
from ..config import BENCH_DIR, CLIENT_SECRET, PROJECT_VENV, venv_python
from ..model import LoadPlan, RunContext, Scenario, ServerSpec
from .base import CC_BODY, Target, client_auth, run_tool

UVICORN_FLAGS = ["--loop", "uvloop", "--no-access-log"]
#: tokensmith's HTTP protocol (uvicorn's httptools one, a response sent in one write), so
#: that the floor runs on the same HTTP server as tokensmith; plain httptools where the
#: project venv is missing.
PROJECT_HTTP = "tokensmith.web.protocol:HttpProtocol"


def server_python() -> Path:
    """The project venv when present, so uvicorn and PyJWT match tokensmith's."""
    project = venv_python(PROJECT_VENV)
    return project if project.exists() else install.bench_python()


class FloorTarget(Target):
    name = "floor"
    family = "floor"
    token = "jwt ES256"
    scenarios = frozenset({Scenario.CC_JWT})
    stores = False

    def prepare(self, ctx: RunContext) -> ServerSpec:
        python = server_python()
        key = ctx.run_dir / "floor-key.pem"
        run_tool([str(python), "floor_app.py", "--gen-key", str(key)], BENCH_DIR, {})
        argv = [
            str(python),
            "-m",
            "uvicorn",
            "floor_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(ctx.port),
            "--workers",
            str(ctx.workers),
            *UVICORN_FLAGS,
            "--http",
            PROJECT_HTTP if python == venv_python(PROJECT_VENV) else "httptools",
        ]
        env = {
            "FLOOR_KEY_FILE": str(key),
            "FLOOR_CLIENT_SECRET": CLIENT_SECRET,
            "FLOOR_ISSUER": ctx.base_url,
        }
        return ServerSpec(argv=argv, env=env, cwd=BENCH_DIR)

    def plan(self, ctx: RunContext) -> LoadPlan:
        return LoadPlan(path="/oauth/token", auth=client_auth(), body=CC_BODY)
