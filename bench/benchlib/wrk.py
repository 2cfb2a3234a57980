"""Drive a server with wrk and parse the summary that lua/report.lua prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .config import CONNECTIONS, LUA_DIR, THREADS, WRK_TIMEOUT_S
from .model import LoadPlan

MARKER = "BENCH_JSON "
ERR_MARKER = "BENCH_ERR "


@dataclass(frozen=True)
class WrkStats:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    error_sample: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


@dataclass(frozen=True)
class Extras:
    """Optional outputs of a wrk run: the folder for the token log (report.lua) and the
    file for the refresh pool left at the end (refresh.lua)."""

    token_log: Path | None = None
    pool_out: Path | None = None


def run(
    base_url: str, plan: LoadPlan, seconds: int, seeds: Path | None, extras: Extras = Extras()
) -> WrkStats:
    script = plan.script or ("refresh.lua" if plan.is_refresh else "post.lua")
    argv = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        "-s",
        str(LUA_DIR / script),
        base_url,
    ]
    env = {**os.environ, **_env(plan, seeds, extras)}
    done = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + WRK_TIMEOUT_S + 30,
        check=False,
    )
    return parse(done.stdout + done.stderr)


def _env(plan: LoadPlan, seeds: Path | None, extras: Extras) -> dict[str, str]:
    env = {
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_PATH": plan.path,
        "BENCH_AUTH": plan.auth,
        "BENCH_BODY": plan.body,
        "BENCH_THREADS": str(THREADS),
    }
    if seeds is not None:
        env["BENCH_SEED_FILE"] = str(seeds)
    if extras.token_log is not None:
        env["BENCH_TOKEN_LOG"] = str(extras.token_log)
    if extras.pool_out is not None:
        env["BENCH_POOL_OUT"] = str(extras.pool_out)
    return env


def parse(output: str) -> WrkStats:
    line = next((ln for ln in output.splitlines() if ln.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output[-2000:]}")
    data = json.loads(line[len(MARKER) :])
    return WrkStats(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        non2xx=data["status"],
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        error_sample=_error_sample(output),
    )


def _error_sample(output: str) -> str:
    """The first failed answer a script recorded (refresh.lua does), if any."""
    lines = [ln[len(ERR_MARKER) :] for ln in output.splitlines() if ln.startswith(ERR_MARKER)]
    return lines[0][:200] if lines else ""
