"""The benchmark harness's pieces that need no server: forms, cookies, the token log,
the stability summary and how the report shows a lost token."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from benchlib import audit, authcode, report, runner, stability  # noqa: E402
from benchlib.model import Result, Segment, StabilityRun  # noqa: E402
from benchlib.probe import SpeedProbe, work  # noqa: E402

LOGIN = """
<form method="post" action="/login" class="stack" novalidate>
  <input type="hidden" name="csrf_token" value="c5rf">
  <input type="hidden" name="next" value="/oauth/authorize?client_id=a&amp;scope=read">
  <input id="email" name="email" type="email" required value="" autofocus>
  <input id="password" name="password" type="password" required>
  <button type="submit" class="button primary wide">Sign in</button>
</form>
"""

CONSENT = """
<form method="post" action="/elsewhere"><input type="hidden" name="x" value="1"></form>
<form method="post" action="/oauth/authorize/decision" class="stack">
  <input type="hidden" name="csrf_token" value="c5rf">
  <input type="hidden" name="client_id" value="app">
  <input type="checkbox" id="remember" name="remember" value="yes" checked>
  <input type="checkbox" name="unticked" value="yes">
  <button type="submit" name="decision" value="deny">Deny</button>
  <button type="submit" name="decision" value="allow">Allow</button>
</form>
"""


def test_login_form_fields_as_a_browser_sends_them() -> None:
    fields = authcode.form_fields(LOGIN, "/login")
    assert fields == {
        "csrf_token": "c5rf",
        "next": "/oauth/authorize?client_id=a&scope=read",
        "email": "",
        "password": "",
    }
    assert authcode.form_fields(LOGIN, "/oauth/authorize/decision") is None


def test_consent_form_keeps_the_checked_box_only() -> None:
    fields = authcode.form_fields(CONSENT, "/oauth/authorize/decision")
    assert fields == {"csrf_token": "c5rf", "client_id": "app", "remember": "yes"}


def test_continue_page_url_is_read_and_unescaped() -> None:
    page = (
        '<head><meta http-equiv="refresh" content="0; url=https://a.example/cb?code=x&amp;'
        'state=y"></head><a href="https://a.example/cb?code=x&amp;state=y">Continue</a>'
    )
    answer = authcode.Answer(200, authcode.Message(), page)
    assert authcode.continued_to(answer, "t") == "https://a.example/cb?code=x&state=y"
    with pytest.raises(RuntimeError, match="no continue page"):
        authcode.continued_to(authcode.Answer(200, authcode.Message(), "<p>hi</p>"), "t")
    with pytest.raises(RuntimeError, match="answered 303"):
        authcode.continued_to(authcode.Answer(303, authcode.Message(), ""), "t")


def test_browser_keeps_and_drops_cookies() -> None:
    browser = authcode.Browser("http://127.0.0.1:9")
    browser._keep(["ts_session=abc; Path=/; HttpOnly; SameSite=lax", "other=1; Path=/"])
    assert browser.cookies == {"ts_session": "abc", "other": "1"}
    browser._keep(['ts_session=""; Max-Age=0; Path=/'])
    assert browser.cookies == {"other": "1"}


def test_pkce_challenge_is_s256_of_the_verifier() -> None:
    verifier, challenge = authcode.pkce_pair()
    assert 43 <= len(verifier) <= 128 and "=" not in challenge and len(challenge) == 43


def test_token_log_is_read_from_every_thread_file(tmp_path: Path) -> None:
    (tmp_path / "tokens-0.txt").write_text("a\nb\n")
    (tmp_path / "tokens-1.txt").write_text("c\n")
    (tmp_path / "other.txt").write_text("d\n")
    assert sorted(audit.read_log(tmp_path)) == ["a", "b", "c"]
    assert audit.Audit(logged=3, answered=3, active=2).lost == 1


def test_lost_tokens_are_impossible_to_miss() -> None:
    assert report.lost_text(0, 45123) == "lost: 0 of 45,123"
    assert report.lost_text(2, 45123) == "LOST: 2 of 45,123"
    assert report.lost_text(None, None) == ""


def _run(rates: list[float], peak: float) -> StabilityRun:
    run = StabilityRun(
        "cc_opaque", "tokensmith-opaque", "tokensmith", "opaque", "postgres", 2, 40, 10
    )
    run.segments = [Segment(i, r, 5.0, int(r * 10), 0, 0, 90.0, 0.0) for i, r in enumerate(rates)]
    run.peak_rss_worker_mb = peak
    stability.summarize(run)
    return run


def test_stability_summary_and_verdicts() -> None:
    run = _run([1000, 1050, 980, 1000], 100.0)
    assert (run.first_rps, run.last_rps, run.min_rps, run.max_rps) == (1000, 1000, 980, 1050)
    assert run.median_rps == 1000 and run.max_deviation_pct == 5.0
    assert run.rate_holds and run.rss_ok

    slowing = _run([1000, 950, 900, 800], 130.0)
    assert slowing.drift_pct == -20.0
    assert slowing.max_deviation_pct > 10 and not slowing.rate_holds and not slowing.rss_ok

    # One noisy segment is not a slowdown: the thirds' means hold.
    noisy = _run([1000, 1000, 1000, 870, 1000, 1000, 1000, 1000, 1000], 100.0)
    assert noisy.max_deviation_pct == 13.0 and noisy.drift_pct == 0.0 and noisy.rate_holds
    assert stability.segment_plan(120) == (10, 12)
    assert stability.segment_plan(5) == (5, 1)


def test_cpu_per_request_drift_tells_costlier_work_from_a_slower_machine() -> None:
    def run_with(costs: list[float]) -> StabilityRun:
        run = StabilityRun(
            "refresh", "tokensmith-opaque", "tokensmith", "opaque", "sqlite", 2, 30, 10
        )
        run.segments = [
            Segment(i, 1000.0 - 100 * i, 5.0, 10_000, 0, 0, 90.0, 0.0, cpu_ms_per_req=c)
            for i, c in enumerate(costs)
        ]
        stability.summarize(run)
        return run

    # the rate fell by 20 % either way; only the first server does more work per request
    assert run_with([0.5, 0.55, 0.6]).cpu_drift_pct == pytest.approx(20.0)
    assert run_with([0.5, 0.5, 0.5]).cpu_drift_pct == 0.0
    assert run_with([0.5, 0.0, 0.5]).cpu_drift_pct == 0.0  # a segment without a reading


def test_report_shows_lost_tokens_and_the_stability_section() -> None:
    row = {
        "scenario": "cc_opaque",
        "server": "tokensmith-opaque",
        "token": "opaque, stored",
        "db": "sqlite",
        "workers": 1,
        "status": "ok",
        "reason": "",
        "rps": 2000.0,
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "non2xx": 0,
        "socket_errors": 0,
        "cpu_s": 1.0,
        "cpu_ms_per_req": 0.5,
        "rss_worker_mb": 100.0,
        "other_cores": 0.0,
        "error_sample": "",
        "tokens_logged": 6000,
        "wrk_answered": 6000,
        "tokens_active": 5999,
        "tokens_lost": 1,
    }
    doc = {
        "date": "today",
        "command": "python bench/run.py",
        "settings": {
            "threads": 2,
            "connections": 32,
            "warmup_s": 1,
            "duration_s": 3,
            "stability_s": 0,
        },
        "environment": {},
        "results": [row],
        "ratios": [],
        "goals": [],
        "stability": [asdict(_run([1000, 1050, 980, 1000], 100.0))],
    }
    md = report.markdown(doc, "x.png")
    assert "| **LOST: 1 of 6,000** |" in md
    assert "## Nothing lost" in md and "## Stability" in md
    row = "| 1,000 | 1,000 | 980 | 1,050 | +0.0 % | 5.0 % | +0.0 % |  | 100 | yes | yes | ok |"
    assert row in md  # no machine drift in a report saved before the probe

    probed = _run([1000, 1000, 900, 900], 100.0)
    probes = [3000, 3000, 3300, 3300]
    probed.segments = [replace(s, probe_us=p) for s, p in zip(probed.segments, probes, strict=True)]
    stability.summarize(probed)
    assert probed.probe_drift_pct == pytest.approx(10.0)
    md = report.markdown({**doc, "stability": [asdict(probed)]}, "x.png")
    assert "| -10.0 % | 5.3 % | +0.0 % | +10.0 % | 100 |" in md
    assert "| 3,300 | 90 |" in md  # the segment's probe µs, then its RSS


def _result(rps: float, status: str = "ok") -> Result:
    return Result("cc_jwt", "floor", "floor", "jwt ES256", "none", 2, status=status, rps=rps)


def test_rounds_report_the_median_run_with_every_rounds_rate() -> None:
    runs = [_result(5200), _result(4100), _result(6000)]
    chosen = runner.median_round(runs)
    assert chosen is runs[0]
    assert chosen.round_rps == [5200, 4100, 6000]
    even = runner.median_round([_result(2), _result(4), _result(3), _result(1)])
    assert even.rps == 2  # the lower middle: never flatters


def test_a_failed_round_is_reported_not_hidden_by_the_median() -> None:
    runs = [_result(5200), _result(0, status="failed"), _result(6000)]
    assert runner.median_round(runs).status == "failed"


def test_a_single_round_report_is_unchanged() -> None:
    assert runner.median_round([_result(5200)]).round_rps == []
    assert report._rps_cell(asdict(_result(5200))) == "5,200"
    many = asdict(runner.median_round([_result(5200), _result(4100), _result(6000)]))
    assert report._rps_cell(many) == "5,200 (4,100-6,000)"


def test_speed_probe_times_the_same_work_once_an_interval() -> None:
    probe = SpeedProbe(interval=0.01)
    probe.start()
    try:
        deadline = time.monotonic() + 5
        while len(taken := probe.take()) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        probe.stop()
    assert taken and all(sample > 0 for sample in taken)
    assert work() == work()  # fixed work: the same result, so the same instructions


def test_pkjwt_dpop_row_is_held_to_half_the_secret_based_jwt_rate() -> None:
    def row(scenario: str, server: str, rps: float, db: str = "sqlite") -> Result:
        return Result(scenario, server, "tokensmith", "jwt ES256", db, 2, rps=rps)

    results = [
        row("cc_jwt", "tokensmith-jwt", 8000),
        row("cc_pkjwt_dpop", "tokensmith-pkjwt-dpop", 3900),
        row("cc_jwt", "tokensmith-jwt", 6000, db="postgres"),
        row("cc_pkjwt_dpop", "tokensmith-pkjwt-dpop", 3000, db="postgres"),
    ]
    goals = {g["goal"]: (g["measured"], g["met"]) for g in report._self_goals(results)}
    assert goals == {
        "tokensmith-pkjwt-dpop sqlite 2w >= 0.5x tokensmith-jwt cc_jwt": ("0.49x", False),
        "tokensmith-pkjwt-dpop postgres 2w >= 0.5x tokensmith-jwt cc_jwt": ("0.5x", True),
    }


def test_prebuilt_requests_pick_their_own_script(tmp_path: Path) -> None:
    from benchlib import wrk
    from benchlib.model import LoadPlan

    plan = LoadPlan(path="/t", auth="", run_seeds=tmp_path / "r", script="prebuilt.lua")
    assert not plan.is_refresh  # no refresh pool is kept for it
    env = wrk._env(plan, plan.run_seeds, wrk.Extras())
    assert env["BENCH_SEED_FILE"] == str(tmp_path / "r")
    assert (REPO / "bench" / "lua" / "prebuilt.lua").is_file()
