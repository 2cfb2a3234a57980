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
from .model import MEMORY, NO_DB, SCENARIO_TITLES, Result, Scenario, Segment, StabilityRun
from .stability import RATE_TOLERANCE_PCT, RSS_LIMIT_MB, rss_within_limit

# (scenario, peer server, minimum tokensmith/peer req/s ratio) the project aims for.
GOALS = [
    (Scenario.CC_JWT, "floor", 0.7),
    (Scenario.CC_JWT, "node-oidc-es256", 1.6),
    (Scenario.CC_JWT, "node-oidc-rs256", 4.0),
    (Scenario.CC_JWT, "authlib-jwt", 15.0),
]
P99_GOAL_MS = 10.0
#: (scenario, db or None for any, minimum req/s of tokensmith's server for it)
RATE_GOALS = [
    (Scenario.CC_OPAQUE, "postgres", 1500.0),
    (Scenario.CC_OPAQUE, "sqlite", 1000.0),
    (Scenario.REFRESH, "postgres", 1500.0),
    (Scenario.REFRESH, "sqlite", 1000.0),
    (Scenario.INTROSPECT, None, 5000.0),
]
#: tokensmith's JWTs against a peer's tokens of another scenario: (ours, theirs, peer)
AHEAD_GOALS = [(Scenario.CC_JWT, Scenario.CC_OPAQUE, "node-oidc-opaque")]
#: tokensmith against itself: (scenario, server, base scenario, base server, minimum ratio)
SELF_GOALS = [
    (Scenario.CC_PKJWT_DPOP, "tokensmith-pkjwt-dpop", Scenario.CC_JWT, "tokensmith-jwt", 0.5),
]
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
    rows += [_lost_goal(r) for r in results if r.status == "ok" and r.tokens_logged is not None]
    rows += _rate_goals(results) + _ahead_goals(results) + _self_goals(results)
    rows += [_rss_goal(r) for r in results if r.family == TS and r.status == "ok"]
    return rows


def _rate_goals(results: list[Result]) -> list[dict[str, Any]]:
    return [
        _rate_goal(r, minimum)
        for scenario, db, minimum in RATE_GOALS
        for r in results
        if r.family == TS
        and r.status == "ok"
        and r.scenario == scenario.value
        and (db is None or r.db == db)
    ]


def _rate_goal(r: Result, minimum: float) -> dict[str, Any]:
    goal = f"{r.server} {r.scenario} {r.db} {r.workers}w >= {minimum:,.0f} req/s"
    return _goal(goal, f"{r.rps:,.0f}", r.rps >= minimum)


def _ahead_goals(results: list[Result]) -> list[dict[str, Any]]:
    """tokensmith ahead of a peer on another scenario (its JWTs against in-memory tokens)."""
    ok = [r for r in results if r.status == "ok" and r.rps > 0]
    return [
        _ahead_goal(ts, p)
        for ours, theirs, peer in AHEAD_GOALS
        for ts in ok
        if ts.family == TS and ts.scenario == ours.value
        for p in ok
        if p.server == peer and p.scenario == theirs.value and p.workers == ts.workers
    ]


def _self_goals(results: list[Result]) -> list[dict[str, Any]]:
    """One tokensmith configuration against another on the same machine and database."""
    ok = [r for r in results if r.status == "ok" and r.rps > 0]
    return [
        _self_goal(r, base, minimum)
        for scenario, server, base_scenario, base_server, minimum in SELF_GOALS
        for r in ok
        if r.server == server and r.scenario == scenario.value
        for base in ok
        if base.server == base_server
        and base.scenario == base_scenario.value
        and (base.db, base.workers) == (r.db, r.workers)
    ]


def _self_goal(r: Result, base: Result, minimum: float) -> dict[str, Any]:
    ratio = round(r.rps / base.rps, 2)
    goal = f"{r.server} {r.db} {r.workers}w >= {minimum}x {base.server} {base.scenario}"
    return _goal(goal, f"{ratio}x", ratio >= minimum)


def _ahead_goal(ts: Result, peer: Result) -> dict[str, Any]:
    ratio = round(ts.rps / peer.rps, 2)
    goal = f"{ts.server} {ts.scenario} {ts.db} {ts.workers}w ahead of {peer.server}"
    return _goal(goal, f"{ratio}x", ratio > 1.0)


def _ratio_goal(row: dict[str, Any], peer: str, minimum: float) -> dict[str, Any]:
    goal = f"{row['tokensmith']} {row['db']} {row['workers']}w >= {minimum}x {peer}"
    return _goal(goal, f"{row['ratio']}x", row["ratio"] >= minimum)


def _p99_goal(r: Result) -> dict[str, Any]:
    goal = f"{r.server} {r.db} {r.workers}w p99 < {P99_GOAL_MS} ms"
    return _goal(goal, f"{r.p99_ms:.2f} ms", r.p99_ms < P99_GOAL_MS)


def _rss_goal(r: Result) -> dict[str, Any]:
    """Peak memory (VmHWM) of the largest worker over the whole run, seeding included."""
    goal = f"{r.server} {r.scenario} {r.db} {r.workers}w peak RSS/worker < {RSS_LIMIT_MB:.0f} MB"
    return _goal(goal, f"{r.rss_worker_mb:.0f} MB", rss_within_limit(r.rss_worker_mb))


def _lost_goal(r: Result) -> dict[str, Any]:
    goal = f"{r.server} {r.scenario} {r.db} {r.workers}w nothing lost"
    return _goal(goal, lost_text(r.tokens_lost, r.tokens_logged), r.tokens_lost == 0)


def _goal(goal: str, measured: str, met: bool) -> dict[str, Any]:
    """One row of the goals table (and of the JSON's ``goals``)."""
    return {"goal": goal, "measured": measured, "met": met}


def lost_text(lost: int | None, logged: int | None) -> str:
    """``lost: 0 of 45,123``; a loss in capitals so that it cannot be missed."""
    if lost is None or logged is None:
        return ""
    word = "lost" if lost == 0 else "LOST"
    return f"{word}: {lost:,} of {logged:,}"


def build(
    results: list[Result], settings: Settings, command: str, steady: list[StabilityRun]
) -> dict[str, Any]:
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
            "stability_s": settings.stability,
            "rounds": settings.rounds,
        },
        "environment": environment(),
        "results": [asdict(r) for r in results],
        "ratios": ratio_rows,
        "goals": goals(results, ratio_rows) + stability_goals(steady),
        "stability": [asdict(run) for run in steady],
    }


def rerender(json_path: Path) -> Path:
    """Recompute the ratios and goals of a saved report with this code, and write its
    ``.json`` and ``.md`` again (the measurements are kept as they are)."""
    doc = json.loads(json_path.read_text())
    results = [Result(**r) for r in doc["results"]]
    steady = [_stability_run(r) for r in doc.get("stability", [])]
    doc["ratios"] = ratios(results)
    doc["goals"] = goals(results, doc["ratios"]) + stability_goals(steady)
    return write(doc, json_path.parent, json_path.stem)


def _stability_run(data: dict[str, Any]) -> StabilityRun:
    segments = [Segment(**s) for s in data["segments"]]
    return StabilityRun(**{**data, "segments": segments})


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
    audited = [r for r in doc["results"] if r.get("tokens_logged") is not None]
    if audited:
        parts.append(_lost_table(audited))
    if doc.get("stability"):
        parts.append(stability_section(doc["stability"]))
    if doc["results"]:
        parts.append(_ratio_table(doc["ratios"]))
    parts.append(_goal_table(doc["goals"]))
    if doc["results"]:
        parts.append(f"![chart]({chart})\n")
    return "\n".join(parts)


def _header(doc: dict[str, Any]) -> str:
    s, env = doc["settings"], doc["environment"]
    lines = [
        f"# tokensmith benchmark, {doc['date']}",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"Load: wrk, {s['threads']} threads, {s['connections']} keep-alive connections, "
        f"{s['warmup_s']} s warm-up then {_measured(s)}; one server at a time.",
        "CPU s: user+system seconds of all the server's processes during the measured run. "
        "RSS: peak (VmHWM) of the largest worker process. A run is flagged when processes "
        "other than the server and wrk used the CPU meanwhile (2 cores are shared by all).",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in env.items()]
    return "\n".join(lines) + "\n"


def _measured(s: dict[str, Any]) -> str:
    if s.get("stability_s"):
        return f"{s['stability_s']} s in back-to-back segments (stability run)"
    rounds = s.get("rounds", 1)
    if rounds > 1:
        return (
            f"{s['duration_s']} s measured, in {rounds} rounds: each row is its median "
            "round, with the range of all rounds' req/s in brackets"
        )
    return f"{s['duration_s']} s measured"


def _scenario_table(scenario: Scenario, rows: list[dict[str, Any]]) -> str:
    audited = any(r.get("tokens_logged") is not None for r in rows)
    head = (
        "| server | token | db | workers | req/s | p50 ms | p99 ms | non-2xx | socket err "
        "| CPU s | CPU ms/req | RSS/worker MB |"
        + (" tokens lost |" if audited else "")
        + " status |"
    )
    columns = 14 if audited else 13
    lines = [f"## {scenario.value}: {SCENARIO_TITLES[scenario]}", "", head, "|" + "---|" * columns]
    lines += [_row(r, audited) for r in rows]
    return "\n".join(lines) + "\n"


def _row(r: dict[str, Any], audited: bool = False) -> str:
    status = "ok" if r["status"] == "ok" else f"{r['status']}: {r['reason'][:160]}"
    if r["status"] == "ok" and r["other_cores"] > CONTENDED_CORES:
        status = f"ok, but other processes used {r['other_cores']:.2f} cores"
    if r["status"] == "ok" and r["error_sample"]:
        status += f"; first non-2xx: {r['error_sample'][:100]}"
    status = status.replace("|", "/").replace("\n", " ")
    if r["status"] != "ok":
        return (
            f"| {r['server']} | {r['token']} | {r['db']} | {r['workers']} |"
            + " |" * (9 if audited else 8)
            + f" {status} |"
        )
    lost = f" {_lost_cell(r)} |" if audited else ""
    return (
        f"| {r['server']} | {r['token']} | {r['db']} | {r['workers']} | {_rps_cell(r)} "
        f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['non2xx']} | {r['socket_errors']} "
        f"| {r['cpu_s']:.1f} | {r['cpu_ms_per_req']:.2f} | {r['rss_worker_mb']:.0f} |{lost}"
        f" {status} |"
    )


def _rps_cell(r: dict[str, Any]) -> str:
    rounds = r.get("round_rps") or []
    if len(rounds) < 2:
        return f"{r['rps']:,.0f}"
    return f"{r['rps']:,.0f} ({min(rounds):,.0f}-{max(rounds):,.0f})"


def _lost_cell(r: dict[str, Any]) -> str:
    text = lost_text(r.get("tokens_lost"), r.get("tokens_logged"))
    return f"**{text}**" if r.get("tokens_lost") else text


def _lost_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "## Nothing lost: every access token received, introspected afterwards",
        "",
        "wrk logs the access token of every 200 answer of the measured run; each is then "
        "introspected by the client that got it. *wrk answers* is wrk's own count of answers "
        "below 400: it should equal the tokens logged.",
        "",
        "| scenario | server | db | workers | tokens logged | wrk answers | counts agree "
        "| active | lost |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['scenario']} | {r['server']} | {r['db']} | {r['workers']} "
        f"| {r['tokens_logged']:,} | {r['wrk_answered']:,} "
        f"| {'yes' if r['tokens_logged'] == r['wrk_answered'] else 'no'} "
        f"| {r['tokens_active']:,} | {_lost_cell(r)} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def _ratio_table(rows: list[dict[str, Any]]) -> str:
    lines = ["## tokensmith / peer (req/s)", ""]
    if not rows:
        return "\n".join([*lines, "No tokensmith run with a comparable peer run.", ""])
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


def stability_goals(runs: list[StabilityRun]) -> list[dict[str, Any]]:
    rows = []
    for run in (r for r in runs if r.status == "ok"):
        name = f"{run.server} {run.scenario} {run.db} {run.workers}w over {run.seconds} s"
        rows.append(
            _goal(
                f"{name}: last third's req/s within {RATE_TOLERANCE_PCT:.0f} % "
                "of the first third's",
                f"{run.drift_pct:+.1f} %",
                run.rate_holds,
            )
        )
        rows.append(
            _goal(
                f"{name}: peak RSS/worker < {RSS_LIMIT_MB:.0f} MB",
                f"{run.peak_rss_worker_mb:.0f} MB",
                run.rss_ok,
            )
        )
    return rows


def stability_section(runs: list[dict[str, Any]]) -> str:
    lines = [
        "## Stability: one server, loaded without a break",
        "",
        "The server is started once, warmed up, then loaded by back-to-back wrk runs "
        "(segments) with the scenario's usual load; the refresh scenario carries its unused "
        "tokens from one segment to the next. Drift: mean req/s of the last third of the "
        "segments against the first third (a leak or a table that slows the server as it "
        "grows shows here). Deviation: the single segment furthest from the median, which "
        "also holds the machine's own noise (about 10 % per 10 s segment here, even for JWTs, "
        "which store nothing). RSS: resident memory of the largest worker after each segment; "
        "peak: its VmHWM from the end of the warm-up (reset then) to the last segment's end. "
        "CPU/req: CPU seconds of the server's processes and of its database's backends per "
        "request; its drift (last third against first, positive: costlier) tells a server "
        "that does more work per request as its tables grow from a machine that lends it "
        "fewer cycles, which moves req/s but not the work per request. Machine drift: the "
        "same for the CPU time of a fixed piece of Python work that the harness times once a "
        "second (`benchlib/probe.py`; positive: the machine was slower); a CPU/req drift that "
        "follows it is the machine's, not the server's. "
        f"Goal: drift within {RATE_TOLERANCE_PCT:.0f} %, "
        f"peak under {RSS_LIMIT_MB:.0f} MB per worker.",
        "",
        "| scenario | server | db | workers | seconds | first req/s | last req/s | min | max "
        "| drift | largest deviation | CPU/req drift | machine drift | peak RSS/worker MB "
        "| rate holds | memory | status |",
        "|" + "---|" * 17,
    ]
    lines += [_stability_row(run) for run in runs]
    for run in (r for r in runs if r["segments"]):
        lines += ["", *_segment_table(run)]
    return "\n".join(lines) + "\n"


def _stability_row(r: dict[str, Any]) -> str:
    head = f"| {r['scenario']} | {r['server']} | {r['db']} | {r['workers']} | {r['seconds']} "
    if r["status"] != "ok":
        reason = r["reason"][:160].replace("|", "/").replace("\n", " ")
        return head + "|" * 12 + f" {r['status']}: {reason} |"
    busy = max((s["other_cores"] for s in r["segments"]), default=0.0)
    status = "ok" if busy <= CONTENDED_CORES else f"ok, but other processes used {busy:.2f} cores"
    return (
        head + f"| {r['first_rps']:,.0f} | {r['last_rps']:,.0f} | {r['min_rps']:,.0f} "
        f"| {r['max_rps']:,.0f} | {r.get('drift_pct', 0.0):+.1f} % "
        f"| {r['max_deviation_pct']:.1f} % | {r.get('cpu_drift_pct', 0.0):+.1f} % "
        f"| {_probe_drift(r)} | {r['peak_rss_worker_mb']:.0f} | {_verdict(r['rate_holds'])} "
        f"| {_verdict(r['rss_ok'])} | {status} |"
    )


def _probe_drift(r: dict[str, Any]) -> str:
    """Blank for a report saved before the probe existed."""
    if not all(s.get("probe_us") for s in r["segments"]):
        return ""
    return f"{r.get('probe_drift_pct', 0.0):+.1f} %"


def _verdict(met: bool) -> str:
    return "yes" if met else "**NO**"


def _segment_table(r: dict[str, Any]) -> list[str]:
    lines = [
        f"{r['server']} {r['scenario']} {r['db']} {r['workers']}w, segments of {r['segment_s']} s:",
        "",
        "| segment | req/s | vs median | p99 ms | non-2xx | socket err | CPU ms/req "
        "| probe µs | RSS/worker MB | other load (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    median = r["median_rps"] or 1.0
    lines += [
        f"| {s['index'] + 1} | {s['rps']:,.0f} | {(s['rps'] / median - 1) * 100:+.1f} % "
        f"| {s['p99_ms']:.2f} | {s['non2xx']} | {s['socket_errors']} "
        f"| {s.get('cpu_ms_per_req', 0.0):.3f} | {s.get('probe_us', 0.0):,.0f} "
        f"| {s['rss_worker_mb']:.0f} "
        f"| {s['other_cores']:.2f} |"
        for s in r["segments"]
    ]
    return lines
