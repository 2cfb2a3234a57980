"""How fast the machine runs at the moment: a fixed piece of work timed in CPU time.

On a shared virtual machine the host lends faster or slower cycles from one minute to the
next, and a server's CPU per request moves with them although it does the same work.
:class:`SpeedProbe` runs :func:`work` once a second on a thread of the harness (a few
milliseconds of CPU, under 1 % of a core) and keeps the thread CPU time each run took. The
median over a stability segment tells how slow the machine was in that segment, so that a
server that does more work as its tables grow can be told from a machine that slowed.
"""

from __future__ import annotations

import hashlib
import threading
import time

__all__ = ["SpeedProbe", "timed_work", "work"]


def work() -> int:
    """Pure-Python arithmetic and hashing, like a token request's own code."""
    total = 0
    for i in range(20_000):
        total += i * i % 7
    for i in range(2_000):
        total += len(hashlib.sha256(str(i).encode()).hexdigest())
    return total


def timed_work() -> float:
    """Thread CPU time of one :func:`work`, in microseconds."""
    start = time.thread_time()
    work()
    return (time.thread_time() - start) * 1e6


class SpeedProbe:
    """Times :func:`work` every ``interval`` seconds until stopped; :meth:`take` hands over
    the samples gathered since the last call."""

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._samples: list[float] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="speed-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def take(self) -> list[float]:
        with self._lock:
            samples, self._samples = self._samples, []
        return samples

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            sample = timed_work()
            with self._lock:
                self._samples.append(sample)
