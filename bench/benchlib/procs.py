"""Start and stop a server's process group and read its CPU and memory from /proc."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .model import ServerSpec

CLK_TCK = os.sysconf("SC_CLK_TCK")
HELPER_MARKERS = ("resource_tracker",)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not listen on port {port} within {timeout:.0f} s")


class Server:
    """A server started in its own session so that its whole group can be stopped."""

    def __init__(self, spec: ServerSpec, log_path: Path) -> None:
        env = {**os.environ, **spec.env}
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                spec.argv,
                cwd=spec.cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._signal(signal.SIGKILL)  # stragglers left in the group

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


def _parent_map() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            if stat:
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def process_tree(root: int) -> list[int]:
    parents = _parent_map()
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree.extend(children)
        frontier = children
    return tree


def cpu_seconds(pid: int) -> float:
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmRSS:")


def _status_mb(pid: int, key: str) -> float:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def is_helper(pid: int) -> bool:
    cmdline = _read(f"/proc/{pid}/cmdline")
    return any(marker in cmdline for marker in HELPER_MARKERS)


@dataclass
class Usage:
    cpu_s: float
    rss_worker_mb: float
    rss_total_mb: float
    processes: int


class UsageMeter:
    """CPU seconds of the server's processes between start() and stop(), and peak RSS."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.before: dict[int, float] = {}

    def start(self) -> None:
        self.before = {pid: cpu_seconds(pid) for pid in process_tree(self.root)}

    def stop(self) -> Usage:
        pids = process_tree(self.root)
        cpu = sum(cpu_seconds(pid) - self.before.get(pid, 0.0) for pid in pids)
        workers = _worker_pids(pids)
        rss = {pid: peak_rss_mb(pid) for pid in pids}
        return Usage(
            cpu_s=cpu,
            rss_worker_mb=max((rss[pid] for pid in workers), default=0.0),
            rss_total_mb=sum(rss.values()),
            processes=len(pids),
        )


def largest_worker_rss(root: int) -> tuple[float, float]:
    """Resident memory now and at its peak (VmHWM), in MB, of the largest worker."""
    workers = _worker_pids(process_tree(root))
    now = max((rss_mb(pid) for pid in workers), default=0.0)
    return now, max((peak_rss_mb(pid) for pid in workers), default=0.0)


def reset_peak_rss(root: int) -> None:
    """Start VmHWM afresh (Linux clear_refs "5") for every process of the server, so that
    the peak covers what follows and not, say, a password hash done while seeding."""
    for pid in process_tree(root):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")


def _worker_pids(pids: list[int]) -> list[int]:
    """Processes that serve requests: the leaves of the tree, minus helpers."""
    parents = _parent_map()
    has_child = {parents.get(pid) for pid in pids}
    return [pid for pid in pids if pid not in has_child and not is_helper(pid)]


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (not idle/iowait)."""
    fields = [int(x) for x in _read("/proc/stat").splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / CLK_TCK


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def backend_cpu_seconds(database: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to ``database`` (their command
    line reads ``postgres: ... USER DATABASE HOST(PORT) STATE``); 0 without a database."""
    if not database:
        return 0.0
    marker = f" {database} "
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            cmdline = _read(f"/proc/{entry}/cmdline").replace("\0", " ")
            if cmdline.startswith("postgres: ") and marker in cmdline:
                total += cpu_seconds(int(entry))
    return total


class OtherLoad:
    """Cores the rest of the machine used meanwhile: all busy time minus the server's
    processes, its database's backends, and this harness's children (wrk)."""

    def __init__(self, root: int, database: str = "") -> None:
        self.root, self.database = root, database
        self.before = 0.0

    def _ours(self) -> float:
        server = tree_cpu_seconds(self.root) + backend_cpu_seconds(self.database)
        return server + children_cpu_seconds()

    def start(self) -> None:
        self.before = machine_busy_seconds() - self._ours()

    def stop(self, seconds: float) -> float:
        other = machine_busy_seconds() - self._ours() - self.before
        return max(0.0, other / seconds) if seconds else 0.0


def busy_cores(seconds: float = 1.0) -> float:
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


def wait_quiet(limit_cores: float, max_wait_s: float) -> float:
    """Wait until the machine is nearly idle (another benchmark may share it).

    Returns the load last seen, in cores."""
    if max_wait_s <= 0:
        return 0.0
    deadline = time.monotonic() + max_wait_s
    load = busy_cores()
    while load > limit_cores and time.monotonic() < deadline:
        print(f"    machine busy ({load:.2f} cores in use by other processes), waiting", flush=True)
        time.sleep(5)
        load = busy_cores()
    return load


def tree_cpu_seconds(root: int) -> float:
    return sum(cpu_seconds(pid) for pid in process_tree(root))


def wait_idle(root: int, max_wait_s: float, idle_cores: float = 0.05) -> None:
    """Let a server finish requests still queued from the warm-up before measuring."""
    deadline = time.monotonic() + max_wait_s
    last = tree_cpu_seconds(root)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = tree_cpu_seconds(root)
        if now - last < idle_cores * 0.5:
            return
        last = now
