"""Command line of the benchmark: ``python bench/run.py --help``."""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

from . import install, report, runner, stability, wrk
from .config import RESULTS_DIR, WORK_DIR, Settings
from .model import Result, StabilityRun
from .servers import Target, all_targets, smoke_targets


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__)
    p.add_argument("--quick", action="store_true", help="5 s runs after a 2 s warm-up")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="seconds-long check: floor app and tokensmith only, no peers",
    )
    p.add_argument("--duration", type=int, help="measured seconds per run (default 30)")
    p.add_argument("--warmup", type=int, help="warm-up seconds per run (default 5)")
    p.add_argument(
        "--only",
        default="",
        help="comma list of server names, families "
        "or scenarios, e.g. floor,node-oidc-es256 or cc_jwt",
    )
    p.add_argument("--workers", default="1,2", help="comma list (default 1,2)")
    p.add_argument("--db", default="sqlite,postgres", help="comma list (default both)")
    p.add_argument("--out", type=Path, help="results folder (default bench/results)")
    p.add_argument("--name", help="results file stem (default the date)")
    p.add_argument(
        "--quiet-wait",
        type=int,
        default=120,
        metavar="S",
        help="longest wait for other processes to leave the CPU before a run",
    )
    p.add_argument(
        "--stability",
        type=int,
        default=0,
        metavar="S",
        help="instead of the usual runs: load each selected server for S seconds "
        "in 10 s segments and check that the rate holds (e.g. 120)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="run the whole selection N times, one round after another, and report each "
        "measurement's median round with the range of all (default 1)",
    )
    p.add_argument("--no-install", action="store_true", help="use what .work already holds")
    p.add_argument(
        "--report-from",
        type=Path,
        metavar="JSON",
        help="measure nothing: recompute the ratios and goals of a saved report's .json "
        "with this version of the harness and write its .json and .md again",
    )
    p.add_argument("--list", action="store_true", help="list servers and scenarios")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    duration, warmup = (2, 1) if args.smoke else (5, 2) if args.quick else (30, 5)
    return Settings(
        duration=args.duration or duration,
        warmup=warmup if args.warmup is None else args.warmup,
        workers=(1,) if args.smoke else tuple(int(w) for w in args.workers.split(",")),
        dbs=("sqlite",) if args.smoke else tuple(args.db.split(",")),
        only=tuple(x for x in args.only.split(",") if x),
        smoke=args.smoke,
        install=not args.no_install,
        quiet_wait=0 if args.smoke else args.quiet_wait,
        out_dir=args.out or (WORK_DIR / "smoke" if args.smoke else RESULTS_DIR),
        stability=0 if args.smoke else args.stability,
        rounds=1 if args.smoke else max(1, args.rounds),
    )


def select(targets: list[Target], only: tuple[str, ...]) -> list[Target]:
    if not only:
        return targets
    scenario_names = {s.value for t in targets for s in t.scenarios}
    wanted = [t for t in targets if t.name in only or t.family in only]
    scenarios = [s for s in only if s in scenario_names]
    if scenarios:
        for t in wanted or targets:
            t.scenarios = frozenset(s for s in t.scenarios if s.value in scenarios)
    return [t for t in (wanted or targets) if t.scenarios]


def install_all(targets: list[Target]) -> None:
    for target in targets:
        if not target.unavailable():
            target.install()


def results_name(args: argparse.Namespace, settings: Settings) -> str:
    if args.name:
        return str(args.name)
    stem = date.today().isoformat()
    if settings.smoke:
        return stem + "-smoke"
    if settings.stability:
        return stem + "-stability"
    return stem + ("-quick" if args.quick else "") + ("-partial" if settings.only else "")


def chart(json_path: Path) -> None:
    try:
        python = install.bench_python()
        script = Path(__file__).with_name("chart.py")
        subprocess.run(
            [str(python), str(script), str(json_path), str(json_path.with_suffix(".png"))],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"chart not drawn: {err}", file=sys.stderr)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the running server is stopped


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = settings_from(args)
    targets = select(smoke_targets() if settings.smoke else all_targets(), settings.only)
    for target in targets:
        target.timing(settings.warmup, settings.duration)
    if args.list:
        return list_targets(targets)
    if args.report_from:
        print(f"wrote {report.rerender(args.report_from)}")
        return 0
    if not wrk.have_wrk():
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if settings.install and not settings.smoke:
        install_all(targets)
    if settings.stability:
        return finish([], settings, args, stability.run_matrix(targets, settings))
    return finish(runner.run_matrix(targets, settings), settings, args)


def finish(
    results: list[Result],
    settings: Settings,
    args: argparse.Namespace,
    steady: list[StabilityRun] | None = None,
) -> int:
    command = "python bench/run.py " + shlex.join(sys.argv[1:] if args else [])
    doc = report.build(results, settings, command.strip(), steady or [])
    md = report.write(doc, settings.out_dir, results_name(args, settings))
    drawn = bool(results) and not settings.smoke
    if drawn:
        chart(md.with_suffix(".json"))
    print(f"\nwrote {md} (+ .json{', .png' if drawn else ''})")
    statuses = [r.status for r in results] + [r.status for r in steady or []]
    return 1 if "failed" in statuses else 0


def list_targets(targets: list[Target]) -> int:
    for t in targets:
        scenarios = ", ".join(sorted(s.value for s in t.scenarios))
        print(f"{t.name:22} {t.family:22} {t.token:40} {scenarios}")
    return 0
