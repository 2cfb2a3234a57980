"""Data passed between the harness parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Scenario(StrEnum):
    CC_JWT = "cc_jwt"
    CC_OPAQUE = "cc_opaque"
    CC_PKJWT_DPOP = "cc_pkjwt_dpop"
    REFRESH = "refresh"
    INTROSPECT = "introspect_jwt"


SCENARIO_TITLES = {
    Scenario.CC_JWT: "client_credentials, JWT access token",
    Scenario.CC_OPAQUE: "client_credentials, opaque token stored",
    Scenario.CC_PKJWT_DPOP: "client_credentials, private_key_jwt + DPoP, JWT access token",
    Scenario.REFRESH: "refresh_token grant with rotation",
    Scenario.INTROSPECT: "introspection of an access token",
}

NO_DB = "none"
MEMORY = "memory"


class Skip(Exception):
    """A run that cannot take place; the reason goes into the report."""


@dataclass(frozen=True)
class RunContext:
    scenario: Scenario
    db: str
    workers: int
    port: int
    run_dir: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def slug(self) -> str:
        return self.run_dir.name


@dataclass(frozen=True)
class ServerSpec:
    """How to start a server; cwd and env are merged over the harness's own."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


@dataclass(frozen=True)
class LoadPlan:
    """The request wrk sends, or for refresh the seeded tokens it starts from.

    With ``introspect_path``, the measured run's access tokens are logged and all of
    them introspected afterwards (the "nothing lost" check, ``benchlib/audit.py``)."""

    path: str
    auth: str
    body: str = ""
    warmup_seeds: Path | None = None
    run_seeds: Path | None = None
    check_body: str = ""
    expect: str = "access_token"
    introspect_path: str = ""
    #: a lua script of bench/lua other than post.lua / refresh.lua (``prebuilt.lua``)
    script: str = ""
    #: with ``script``: the answer the target checked itself (no check request is sent)
    sample: str = ""

    @property
    def is_refresh(self) -> bool:
        return self.run_seeds is not None and not self.script


@dataclass
class Result:
    scenario: str
    server: str
    family: str
    token: str
    db: str
    workers: int
    status: str = "ok"
    reason: str = ""
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    non2xx: int = 0
    socket_errors: int = 0
    cpu_s: float = 0.0
    cpu_ms_per_req: float = 0.0
    rss_worker_mb: float = 0.0
    rss_total_mb: float = 0.0
    processes: int = 0
    other_cores: float = 0.0
    error_sample: str = ""
    sample: str = ""
    # "nothing lost" check (None when the run has none): access tokens of 200 answers
    # logged by wrk, wrk's own count of answers below 400, and how many introspect active
    tokens_logged: int | None = None
    wrk_answered: int | None = None
    tokens_active: int | None = None
    tokens_lost: int | None = None
    # with --rounds: req/s of every round in run order; the fields above are the median's
    round_rps: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Segment:
    """One back-to-back wrk run of a stability run."""

    index: int
    rps: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int
    rss_worker_mb: float  # resident memory (VmRSS) of the largest worker at the end
    other_cores: float
    #: CPU of the server's processes and its database's backends, per request
    cpu_ms_per_req: float = 0.0
    #: median CPU µs of the speed probe's fixed work during the segment (benchlib.probe)
    probe_us: float = 0.0


@dataclass
class StabilityRun:
    """One server started once and loaded for ``seconds`` in segments."""

    scenario: str
    server: str
    family: str
    token: str
    db: str
    workers: int
    seconds: int
    segment_s: int
    status: str = "ok"
    reason: str = ""
    sample: str = ""
    segments: list[Segment] = field(default_factory=list)
    first_rps: float = 0.0
    last_rps: float = 0.0
    min_rps: float = 0.0
    max_rps: float = 0.0
    median_rps: float = 0.0
    max_deviation_pct: float = 0.0  # largest distance of a segment from the median
    drift_pct: float = 0.0  # mean of the last third of segments against the first third
    cpu_drift_pct: float = 0.0  # the same for CPU per request (positive: costlier)
    probe_drift_pct: float = 0.0  # the same for the speed probe (positive: machine slower)
    peak_rss_worker_mb: float = 0.0  # VmHWM of the largest worker over the whole run
    rate_holds: bool = False
    rss_ok: bool = False
