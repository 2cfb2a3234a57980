"""Stability run (``--stability S``): one server, started once, loaded for S seconds.

The load is the scenario's usual wrk run, cut into back-to-back segments of SEGMENT_S
seconds so that each has its own req/s and p99; after each, the largest worker's
resident memory is read. The refresh scenario carries its token pool from one segment to
the next (``lua/refresh.lua`` writes what is left unused) and tops it up with fresh
tokens, because the tokens in flight when a segment stops are lost to the pool.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from . import wrk
from .config import Settings
from .model import LoadPlan, RunContext, Segment, StabilityRun
from .probe import SpeedProbe
from .procs import (
    OtherLoad,
    Server,
    backend_cpu_seconds,
    largest_worker_rss,
    reset_peak_rss,
    tree_cpu_seconds,
)
from .runner import (
    Cell,
    backends,
    cells,
    context,
    guarded,
    identity,
    pg_status,
    precondition,
    warm_up,
)
from .servers import Target
from .servers.base import REFRESH_SEEDS

SEGMENT_S = 10
RATE_TOLERANCE_PCT = 10.0  # the last third's mean req/s within this of the first third's
RSS_LIMIT_MB = 120.0  # peak resident memory per worker


def rss_within_limit(peak_mb: float) -> bool:
    """The memory goal: a measured peak (0 means none was read) under the limit."""
    return 0 < peak_mb < RSS_LIMIT_MB


def segment_plan(seconds: int) -> tuple[int, int]:
    """(segment length, number of segments) for a run of about ``seconds``."""
    length = min(SEGMENT_S, seconds)
    return length, max(1, round(seconds / length))


def run_matrix(targets: list[Target], settings: Settings) -> list[StabilityRun]:
    pg = pg_status(settings)
    return [_one(cell, settings, pg) for cell in cells(targets, settings)]


def _one(cell: Cell, settings: Settings, pg: str) -> StabilityRun:
    target, scenario, db, workers = cell
    run = StabilityRun(
        **identity(target, scenario, db, workers),
        seconds=settings.stability,
        segment_s=segment_plan(settings.stability)[0],
    )
    print(f"== stability | {scenario.value} | {target.name} | db={db} | workers={workers}")
    reason = precondition(target, db, pg)
    if reason:
        run.status, run.reason = "skipped", reason
    else:
        _run(target, context(cell, "stability-"), settings, run)
    print(f"    -> {_line(run)}", flush=True)
    return run


@dataclass(frozen=True)
class Drive:
    """What every segment of one stability run shares."""

    target: Target
    server: Server
    ctx: RunContext
    plan: LoadPlan
    probe: SpeedProbe

    def segment(self, index: int, seconds: int, seeds: Path | None, pool: Path | None) -> Segment:
        database = backends(self.target, self.ctx)
        other = OtherLoad(self.server.pid, database)
        other.start()
        cpu_before = self._cpu(database)
        self.probe.take()  # what was timed before this segment
        stats = wrk.run(self.ctx.base_url, self.plan, seconds, seeds, wrk.Extras(pool_out=pool))
        cpu = self._cpu(database) - cpu_before
        probes = self.probe.take()
        return Segment(
            index=index,
            rps=stats.rps,
            p99_ms=stats.p99_ms,
            requests=stats.requests,
            non2xx=stats.non2xx,
            socket_errors=stats.socket_errors,
            rss_worker_mb=largest_worker_rss(self.server.pid)[0],
            other_cores=other.stop(stats.duration_s),
            cpu_ms_per_req=1000 * cpu / stats.requests if stats.requests else 0.0,
            probe_us=statistics.median(probes) if probes else 0.0,
        )

    def _cpu(self, database: str) -> float:
        """CPU seconds of the server's processes and of its database's backends."""
        return tree_cpu_seconds(self.server.pid) + backend_cpu_seconds(database)


def _run(target: Target, ctx: RunContext, settings: Settings, run: StabilityRun) -> None:
    def work(server: Server, plan: LoadPlan) -> None:
        warm_up(server, ctx, plan, settings)
        reset_peak_rss(server.pid)
        probe = SpeedProbe()
        probe.start()
        try:
            _segments(Drive(target, server, ctx, plan, probe), run)
        finally:
            probe.stop()
        summarize(run)

    guarded(target, ctx, run, work)


def _segments(drive: Drive, run: StabilityRun) -> None:
    length, count = segment_plan(run.seconds)
    seeds = drive.plan.run_seeds
    for index in range(count):
        pool = drive.ctx.run_dir / f"pool-{index}.txt" if drive.plan.is_refresh else None
        segment = drive.segment(index, length, seeds, pool)
        run.segments.append(segment)
        print(
            f"    segment {index + 1}/{count}: {segment.rps:,.0f} req/s  "
            f"p99 {segment.p99_ms:.2f} ms  non-2xx {segment.non2xx}  "
            f"cpu {segment.cpu_ms_per_req:.3f} ms/req  probe {segment.probe_us:,.0f} µs  "
            f"rss/worker {segment.rss_worker_mb:.0f} MB  other load {segment.other_cores:.2f}",
            flush=True,
        )
        if pool is not None and index + 1 < count:
            seeds = _topped_up(drive.target, drive.ctx, pool)
    run.peak_rss_worker_mb = largest_worker_rss(drive.server.pid)[1]


def _topped_up(target: Target, ctx: RunContext, pool: Path) -> Path:
    """The next segment's seeds: what this one left unused, plus fresh tokens for those
    that were in flight when it stopped."""
    left = pool.read_text().split()
    missing = REFRESH_SEEDS - len(left)
    if missing > 0:
        fresh = pool.with_suffix(".fresh")
        target.seed_refresh(ctx, missing, fresh)
        left += fresh.read_text().split()
    seeds = pool.with_suffix(".next")
    seeds.write_text("\n".join(left) + "\n")
    return seeds


def summarize(run: StabilityRun) -> None:
    rates = [s.rps for s in run.segments]
    if not rates:
        return
    median = statistics.median(rates)
    run.first_rps, run.last_rps = rates[0], rates[-1]
    run.min_rps, run.max_rps, run.median_rps = min(rates), max(rates), median
    run.max_deviation_pct = max(abs(r - median) for r in rates) / median * 100 if median else 0.0
    run.drift_pct = drift_pct(rates)
    costs = [s.cpu_ms_per_req for s in run.segments]
    run.cpu_drift_pct = drift_pct(costs) if all(costs) else 0.0
    probes = [s.probe_us for s in run.segments]
    run.probe_drift_pct = drift_pct(probes) if all(probes) else 0.0
    run.rate_holds = median > 0 and abs(run.drift_pct) <= RATE_TOLERANCE_PCT
    run.rss_ok = rss_within_limit(run.peak_rss_worker_mb)


def drift_pct(rates: list[float]) -> float:
    """How far the rate moved over the run: the mean of the last third of the segments
    against the mean of the first third, in percent (negative: it slowed down).  Thirds,
    not single segments, because one 10 s segment on a shared 2-core machine varies by
    about 10 % on its own, even for a server that keeps no state."""
    third = max(1, len(rates) // 3)
    first = statistics.fmean(rates[:third])
    last = statistics.fmean(rates[-third:])
    return (last - first) / first * 100 if first else 0.0


def _line(run: StabilityRun) -> str:
    if run.status != "ok":
        return f"{run.status}: {run.reason}"
    return (
        f"{run.first_rps:,.0f} -> {run.last_rps:,.0f} req/s (min {run.min_rps:,.0f}, "
        f"max {run.max_rps:,.0f}, largest deviation {run.max_deviation_pct:.1f} %, "
        f"drift {run.drift_pct:+.1f} %, cpu/req drift {run.cpu_drift_pct:+.1f} %, "
        f"machine drift {run.probe_drift_pct:+.1f} %)  "
        f"peak rss/worker {run.peak_rss_worker_mb:.0f} MB"
    )
