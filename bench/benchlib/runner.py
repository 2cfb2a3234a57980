"""Run one server through one scenario: start, check by hand, warm up, measure, stop."""

from __future__ import annotations

import shutil
import traceback

from . import http, postgres, wrk
from .config import WORK_DIR, Settings
from .model import LoadPlan, Result, RunContext, Scenario, Skip
from .procs import (
    Server,
    UsageMeter,
    children_cpu_seconds,
    free_port,
    machine_busy_seconds,
    wait_idle,
    wait_port,
    wait_quiet,
)
from .servers import Target

STARTUP_TIMEOUT_S = 90
QUIET_CORES = 0.25  # other processes' load tolerated before a run starts
DRAIN_WAIT_S = 120  # a slow server may still work through the warm-up's queued requests
RUNS_DIR = WORK_DIR / "runs"


def new_result(target: Target, scenario: Scenario, db: str, workers: int) -> Result:
    return Result(
        scenario=scenario.value,
        server=target.name,
        family=target.family,
        token=target.token,
        db=db,
        workers=workers,
    )


def precondition(target: Target, db: str, pg_status: str) -> str:
    return target.unavailable() or (pg_status if db == "postgres" else "")


def run_one(target: Target, ctx: RunContext, settings: Settings, result: Result) -> Result:
    if ctx.run_dir.exists():
        shutil.rmtree(ctx.run_dir)
    ctx.run_dir.mkdir(parents=True)
    try:
        _start_and_measure(target, ctx, settings, result)
    except Skip as skip:
        result.status, result.reason = "skipped", str(skip)
    except Exception as err:  # a broken peer must not stop the other runs
        result.status, result.reason = "failed", f"{type(err).__name__}: {err}"
        traceback.print_exc()
    finally:
        target.cleanup(ctx)
    return result


def _start_and_measure(target: Target, ctx: RunContext, settings: Settings, result: Result) -> None:
    server = Server(target.prepare(ctx), ctx.run_dir / "server.log")
    try:
        wait_port(ctx.port, STARTUP_TIMEOUT_S, server.proc)
        plan = target.plan(ctx)
        result.sample = http.check(ctx.base_url, plan)
        print(f"    check: 200 {result.sample[:150]}", flush=True)
        _measure(server, ctx, plan, settings, result)
    except Exception as err:
        if not isinstance(err, Skip):
            print(f"    server log tail:\n{server.log_tail()}", flush=True)
        raise
    finally:
        server.stop()


def _measure(
    server: Server, ctx: RunContext, plan: LoadPlan, settings: Settings, result: Result
) -> None:
    wait_quiet(QUIET_CORES, settings.quiet_wait)
    if settings.warmup:
        wrk.run(ctx.base_url, plan, settings.warmup, plan.warmup_seeds)
        wait_idle(server.pid, DRAIN_WAIT_S)
    meter = UsageMeter(server.pid)
    machine, children = machine_busy_seconds(), children_cpu_seconds()
    meter.start()
    stats = wrk.run(ctx.base_url, plan, settings.duration, plan.run_seeds)
    usage = meter.stop()
    machine, children = machine_busy_seconds() - machine, children_cpu_seconds() - children
    other = machine - usage.cpu_s - children
    result.other_cores = max(0.0, other / stats.duration_s) if stats.duration_s else 0.0
    result.rps, result.requests = stats.rps, stats.requests
    result.p50_ms, result.p99_ms = stats.p50_ms, stats.p99_ms
    result.non2xx, result.socket_errors = stats.non2xx, stats.socket_errors
    result.error_sample = stats.error_sample
    result.cpu_s = usage.cpu_s
    result.cpu_ms_per_req = 1000 * usage.cpu_s / stats.requests if stats.requests else 0.0
    result.rss_worker_mb, result.rss_total_mb = usage.rss_worker_mb, usage.rss_total_mb
    result.processes = usage.processes


def run_matrix(targets: list[Target], settings: Settings) -> list[Result]:
    pg_status = postgres.available() if "postgres" in settings.dbs else ""
    results = []
    for scenario in Scenario:
        for target in (t for t in targets if scenario in t.scenarios):
            for db in target.dbs(settings.dbs):
                for workers in settings.workers:
                    results.append(_one(target, scenario, db, workers, settings, pg_status))
    return results


def _one(
    target: Target, scenario: Scenario, db: str, workers: int, settings: Settings, pg_status: str
) -> Result:
    result = new_result(target, scenario, db, workers)
    print(f"== {scenario.value} | {target.name} | db={db} | workers={workers}", flush=True)
    reason = precondition(target, db, pg_status)
    if reason:
        result.status, result.reason = "skipped", reason
    else:
        slug = f"{scenario.value}-{target.name}-{db}-{workers}w"
        ctx = RunContext(scenario, db, workers, free_port(), RUNS_DIR / slug)
        run_one(target, ctx, settings, result)
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
