"""Run one server through one scenario: start, check by hand, warm up, measure, stop."""

from __future__ import annotations

import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from . import audit, http, postgres, wrk
from .config import WORK_DIR, Settings
from .model import LoadPlan, Result, RunContext, Scenario, Skip
from .procs import (
    OtherLoad,
    Server,
    UsageMeter,
    free_port,
    wait_idle,
    wait_port,
    wait_quiet,
)
from .servers import Target
from .servers.base import pg_name

STARTUP_TIMEOUT_S = 90
QUIET_CORES = 0.25  # other processes' load tolerated before a run starts
DRAIN_WAIT_S = 120  # a slow server may still work through the warm-up's queued requests
RUNS_DIR = WORK_DIR / "runs"


def identity(target: Target, scenario: Scenario, db: str, workers: int) -> dict[str, Any]:
    """The fields that name a run, shared by :class:`Result` and :class:`StabilityRun`."""
    return {
        "scenario": scenario.value,
        "server": target.name,
        "family": target.family,
        "token": target.token,
        "db": db,
        "workers": workers,
    }


def new_result(target: Target, scenario: Scenario, db: str, workers: int) -> Result:
    return Result(**identity(target, scenario, db, workers))


def precondition(target: Target, db: str, pg_status: str) -> str:
    return target.unavailable() or (pg_status if db == "postgres" else "")


class Outcome(Protocol):
    """What a run reports whatever it measures: a Result, or a StabilityRun."""

    status: str
    reason: str
    sample: str


Work = Callable[[Server, LoadPlan], None]


def run_one(target: Target, ctx: RunContext, settings: Settings, result: Result) -> Result:
    def work(server: Server, plan: LoadPlan) -> None:
        _measure(target, server, ctx, plan, settings, result)

    guarded(target, ctx, result, work)
    return result


def guarded(target: Target, ctx: RunContext, outcome: Outcome, work: Work) -> None:
    """Start the server in a fresh run folder, check it, run ``work``, stop and clean up;
    a skip or a failure goes into ``outcome`` instead of stopping the other runs."""
    if ctx.run_dir.exists():
        shutil.rmtree(ctx.run_dir)
    ctx.run_dir.mkdir(parents=True)
    try:
        _start_and(target, ctx, outcome, work)
    except Skip as skip:
        outcome.status, outcome.reason = "skipped", str(skip)
    except Exception as err:  # a broken peer must not stop the other runs
        outcome.status, outcome.reason = "failed", f"{type(err).__name__}: {err}"
        traceback.print_exc()
    finally:
        target.cleanup(ctx)


def _start_and(target: Target, ctx: RunContext, outcome: Outcome, work: Work) -> None:
    server = Server(target.prepare(ctx), ctx.run_dir / "server.log")
    try:
        wait_port(ctx.port, STARTUP_TIMEOUT_S, server.proc)
        plan = target.plan(ctx)
        outcome.sample = plan.sample if plan.script else http.check(ctx.base_url, plan)
        print(f"    check: 200 {outcome.sample[:150]}", flush=True)
        work(server, plan)
    except Exception as err:
        if not isinstance(err, Skip):
            print(f"    server log tail:\n{server.log_tail()}", flush=True)
        raise
    finally:
        server.stop()


def warm_up(server: Server, ctx: RunContext, plan: LoadPlan, settings: Settings) -> None:
    """Wait for a quiet machine, warm the server up, and let it drain."""
    wait_quiet(QUIET_CORES, settings.quiet_wait)
    if settings.warmup:
        wrk.run(ctx.base_url, plan, settings.warmup, plan.warmup_seeds)
        wait_idle(server.pid, DRAIN_WAIT_S)


def backends(target: Target, ctx: RunContext) -> str:
    """The run's PostgreSQL database, whose backends work for the server."""
    return pg_name(target, ctx) if ctx.db == "postgres" else ""


def _measure(
    target: Target,
    server: Server,
    ctx: RunContext,
    plan: LoadPlan,
    settings: Settings,
    result: Result,
) -> None:
    warm_up(server, ctx, plan, settings)
    meter = UsageMeter(server.pid)
    other = OtherLoad(server.pid, backends(target, ctx))
    token_log = _token_log(ctx, plan)
    meter.start()
    other.start()
    stats = wrk.run(
        ctx.base_url, plan, settings.duration, plan.run_seeds, wrk.Extras(token_log=token_log)
    )
    usage = meter.stop()
    result.other_cores = other.stop(stats.duration_s)
    result.rps, result.requests = stats.rps, stats.requests
    result.p50_ms, result.p99_ms = stats.p50_ms, stats.p99_ms
    result.non2xx, result.socket_errors = stats.non2xx, stats.socket_errors
    result.error_sample = stats.error_sample
    result.cpu_s = usage.cpu_s
    result.cpu_ms_per_req = 1000 * usage.cpu_s / stats.requests if stats.requests else 0.0
    result.rss_worker_mb, result.rss_total_mb = usage.rss_worker_mb, usage.rss_total_mb
    result.processes = usage.processes
    if token_log is not None:
        _audit(ctx, plan, token_log, stats.requests - stats.non2xx, result)


def _token_log(ctx: RunContext, plan: LoadPlan) -> Path | None:
    if not plan.introspect_path:
        return None
    folder = ctx.run_dir / "tokens"
    folder.mkdir()
    return folder


def _audit(ctx: RunContext, plan: LoadPlan, folder: Path, answered: int, result: Result) -> None:
    print("    introspecting every token the run received ...", flush=True)
    started = time.monotonic()
    found = audit.audit(ctx.base_url, plan.introspect_path, plan.auth, folder, answered)
    result.tokens_logged, result.wrk_answered = found.logged, found.answered
    result.tokens_active, result.tokens_lost = found.active, found.lost
    took = time.monotonic() - started
    print(
        f"    tokens lost: {found.lost} of {found.logged:,} "
        f"(wrk answers: {answered:,}; introspected in {took:.1f} s)",
        flush=True,
    )


Cell = tuple[Target, Scenario, str, int]


def cells(targets: list[Target], settings: Settings) -> Iterator[Cell]:
    """Every (server, scenario, database, workers) the settings select, in report order."""
    for scenario in Scenario:
        for target in (t for t in targets if scenario in t.scenarios):
            for db in target.dbs(settings.dbs):
                for workers in settings.workers:
                    yield target, scenario, db, workers


def context(cell: Cell, prefix: str = "") -> RunContext:
    target, scenario, db, workers = cell
    slug = f"{prefix}{scenario.value}-{target.name}-{db}-{workers}w"
    return RunContext(scenario, db, workers, free_port(), RUNS_DIR / slug)


def pg_status(settings: Settings) -> str:
    return postgres.available() if "postgres" in settings.dbs else ""


def run_matrix(targets: list[Target], settings: Settings) -> list[Result]:
    """Every cell once per round, a round after another, so that a slow spell of the
    machine falls on all servers alike; each cell reports its median round."""
    pg = pg_status(settings)
    grid = list(cells(targets, settings))
    rounds = [[_one(cell, settings, pg, n) for cell in grid] for n in range(settings.rounds)]
    return [median_round(list(runs)) for runs in zip(*rounds, strict=True)]


def median_round(runs: list[Result]) -> Result:
    """The run with the median req/s (the lower one of an even count), carrying the req/s
    of every round. A round that did not succeed is reported instead: a failure is never
    hidden behind the rounds that passed."""
    if len(runs) == 1:
        return runs[0]
    failed = [r for r in runs if r.status != "ok"]
    chosen = failed[0] if failed else sorted(runs, key=lambda r: r.rps)[(len(runs) - 1) // 2]
    chosen.round_rps = [r.rps for r in runs]
    return chosen


def _one(cell: Cell, settings: Settings, pg: str, round_: int = 0) -> Result:
    target, scenario, db, workers = cell
    result = new_result(target, scenario, db, workers)
    of = f" | round {round_ + 1}/{settings.rounds}" if settings.rounds > 1 else ""
    print(f"== {scenario.value} | {target.name} | db={db} | workers={workers}{of}", flush=True)
    reason = precondition(target, db, pg)
    if reason:
        result.status, result.reason = "skipped", reason
    else:
        run_one(
            target,
            context(cell, f"r{round_ + 1}-" if settings.rounds > 1 else ""),
            settings,
            result,
        )
    print(f"    -> {_line(result)}", flush=True)
    return result


def _line(r: Result) -> str:
    if r.status != "ok":
        return f"{r.status}: {r.reason}"
    return (
        f"{r.rps:,.0f} req/s  p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms:.2f} ms  "
        f"non-2xx {r.non2xx}  errors {r.socket_errors}  cpu {r.cpu_s:.1f} s  "
        f"rss/worker {r.rss_worker_mb:.0f} MB  other load {r.other_cores:.2f} cores"
    )
