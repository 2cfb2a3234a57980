"""Write results/<name>.json and .md: the table, tokensmith's ratios and the goals."""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import CONNECTIONS, PEERS_DIR, THREADS, Settings
from .model import MEMORY, NO_DB, SCENARIO_TITLES, Result, Scenario

# (scenario, peer server, minimum tokensmith/peer req/s ratio) the project aims for.
GOALS = [
    (Scenario.CC_JWT, "floor", 0.7),
    (Scenario.CC_JWT, "node-oidc-es256", 1.6),
    (Scenario.CC_JWT, "node-oidc-rs256", 4.0),
    (Scenario.CC_JWT, "authlib-jwt", 15.0),
]
P99_GOAL_MS = 10.0
CONTENDED_CORES = 0.2  # load from other processes during a run that makes it unreliable
TS = "tokensmith"


def _cmd(argv: list[str], any_status: bool = False) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except OSError:
        return "not installed"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text and (done.returncode == 0 or any_status) else "?"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def environment() -> dict[str, str]:
    from .servers.tokensmith import CLI

    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    pins = [*_pins("authlib_app"), *_pins("dot_project"), _node_pin()]
    return {
        "cpu": f"{_cpu_model()} x {_cmd(['nproc'])}",
        "memory_gib": f"{mem_kb / 2**20:.1f}",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _cmd(["node", "--version"]),
        "wrk": _cmd(["wrk", "--version"], any_status=True).split(" Copyright")[0],
        "postgres": _cmd(["psql", "--version"]),
        "tokensmith": _cmd([str(CLI), "--version"]),
        "peers": ", ".join(sorted(set(pins))),
    }


def _pins(peer: str) -> list[str]:
    lines = (PEERS_DIR / peer / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _node_pin() -> str:
    deps = json.loads((PEERS_DIR / "oidc_provider" / "package.json").read_text())["dependencies"]
    return f"oidc-provider=={deps['oidc-provider']}"


def ratios(results: list[Result]) -> list[dict[str, Any]]:
    ok = [r for r in results if r.status == "ok" and r.rps > 0]
    rows = []
    for ts in (r for r in ok if r.family == TS):
        for peer in ok:
            if peer.family != TS and _comparable(ts, peer):
                rows.append(_ratio_row(ts, peer))
    return rows


def _comparable(ts: Result, peer: Result) -> bool:
    same_db = peer.db == ts.db or peer.db in (NO_DB, MEMORY)
    return peer.scenario == ts.scenario and peer.workers == ts.workers and same_db


def _ratio_row(ts: Result, peer: Result) -> dict[str, Any]:
    return {
        "scenario": ts.scenario,
        "workers": ts.workers,
        "db": ts.db,
        "tokensmith": ts.server,
        "peer": peer.server,
        "peer_db": peer.db,
        "ratio": round(ts.rps / peer.rps, 2),
    }


def goals(results: list[Result], ratio_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [
        _ratio_goal(r, peer, minimum)
        for scenario, peer, minimum in GOALS
        for r in ratio_rows
        if r["scenario"] == scenario.value and r["peer"] == peer
    ]
    rows += [
        _p99_goal(r)
        for r in results
        if r.server == "tokensmith-jwt" and r.status == "ok" and r.scenario == Scenario.CC_JWT
    ]
    return rows


def _ratio_goal(row: dict[str, Any], peer: str, minimum: float) -> dict[str, Any]:
    goal = f"{row['tokensmith']} {row['db']} {row['workers']}w >= {minimum}x {peer}"
    return {"goal": goal, "measured": f"{row['ratio']}x", "met": row["ratio"] >= minimum}


def _p99_goal(r: Result) -> dict[str, Any]:
    goal = f"{r.server} {r.db} {r.workers}w p99 < {P99_GOAL_MS} ms"
    return {"goal": goal, "measured": f"{r.p99_ms:.2f} ms", "met": r.p99_ms < P99_GOAL_MS}


def build(results: list[Result], settings: Settings, command: str) -> dict[str, Any]:
    ratio_rows = ratios(results)
    return {
        "date": datetime.now().strftime("%Y-%m-%d %H:%M"),
        "command": command,
        "settings": {
            "duration_s": settings.duration,
            "warmup_s": settings.warmup,
            "connections": CONNECTIONS,
            "threads": THREADS,
            "workers": list(settings.workers),
            "dbs": list(settings.dbs),
        },
        "environment": environment(),
        "results": [asdict(r) for r in results],
        "ratios": ratio_rows,
        "goals": goals(results, ratio_rows),
    }


def write(doc: dict[str, Any], out_dir: Path, name: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = out_dir / f"{name}.md"
    md.write_text(markdown(doc, f"{name}.png"))
    return md


def markdown(doc: dict[str, Any], chart: str) -> str:
    parts = [_header(doc)]
    for scenario in Scenario:
        rows = [r for r in doc["results"] if r["scenario"] == scenario.value]
        if rows:
            parts.append(_scenario_table(scenario, rows))
    parts += [_ratio_table(doc["ratios"]), _goal_table(doc["goals"]), f"![chart]({chart})\n"]
    return "\n".join(parts)


def _header(doc: dict[str, Any]) -> str:
    s, env = doc["settings"], doc["environment"]
    lines = [
        f"# tokensmith benchmark, {doc['date']}",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"Load: wrk, {s['threads']} threads, {s['connections']} keep-alive connections, "
        f"{s['warmup_s']} s warm-up then {s['duration_s']} s measured; one server at a time.",
        "CPU s: user+system seconds of all the server's processes during the measured run. "
        "RSS: peak (VmHWM) of the largest worker process. A run is flagged when processes "
        "other than the server and wrk used the CPU meanwhile (2 cores are shared by all).",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def _scenario_table(scenario: Scenario, rows: list[dict[str, Any]]) -> str:
    head = (
        "| server | token | db | workers | req/s | p50 ms | p99 ms | non-2xx | socket err "
        "| CPU s | CPU ms/req | RSS/worker MB | status |"
    )
    lines = [f"## {scenario.value}: {SCENARIO_TITLES[scenario]}", "", head, "|" + "---|" * 13]
    lines += [_row(r) for r in rows]
    return "\n".join(lines) + "\n"


def _row(r: dict[str, Any]) -> str:
    status = "ok" if r["status"] == "ok" else f"{r['status']}: {r['reason'][:160]}"
    if r["status"] == "ok" and r["other_cores"] > CONTENDED_CORES:
        status = f"ok, but other processes used {r['other_cores']:.2f} cores"
    if r["status"] == "ok" and r["error_sample"]:
        status += f"; first non-2xx: {r['error_sample'][:100]}"
    status = status.replace("|", "/").replace("\n", " ")
    if r["status"] != "ok":
        return (
            f"| {r['server']} | {r['token']} | {r['db']} | {r['workers']} |"
            + " |" * 8
            + f" {status} |"
        )
    return (
        f"| {r['server']} | {r['token']} | {r['db']} | {r['workers']} | {r['rps']:,.0f} "
        f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non2xx']} | {r['socket_errors']} "
        f"| {r['cpu_s']:.1f} | {r['cpu_ms_per_req']:.2f} | {r['rss_worker_mb']:.0f} "
        f"| {status} |"
    )


def _ratio_table(rows: list[dict[str, Any]]) -> str:
    lines = ["## tokensmith / peer (req/s)", ""]
    if not rows:
        return "\n".join([*lines, "No tokensmith run completed.", ""])
    lines += [
        "| scenario | workers | tokensmith | db | peer | peer db | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['scenario']} | {r['workers']} | {r['tokensmith']} | {r['db']} | {r['peer']} "
        f"| {r['peer_db']} | {r['ratio']:.2f}x |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def _goal_table(rows: list[dict[str, Any]]) -> str:
    lines = ["## Goals", ""]
    if not rows:
        return "\n".join([*lines, "Nothing to compare yet.", ""])
    lines += ["| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {r['goal']} | {r['measured']} | {'yes' if r['met'] else 'no'} |" for r in rows]
    return "\n".join(lines) + "\n"
