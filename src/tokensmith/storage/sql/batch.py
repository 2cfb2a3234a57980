"""Group commit: concurrent writes from one process share a transaction.

Every stored token is a write, and on both databases the cost of a write is mostly the
transaction around it (pool checkout, ``BEGIN``, ``COMMIT``, the WAL flush) rather than
the row.  :class:`GroupCommit` runs one transaction at a time per store; the writes that
arrive while it runs wait for the next one and go in together.  A caller's ``await``
returns only after the transaction holding its write has committed, so an answer is never
sent for a token that is not stored.  Idle, a write goes out at once: there is no timer.

If a shared transaction fails, each of its writes is retried in a transaction of its
own, so one bad write (a duplicate key) fails only its own caller; but when the database
is unavailable (:class:`~tokensmith.core.errors.TemporarilyUnavailable`) every write of the
batch fails with it at once, rather than each waiting for the same dead database again.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from tokensmith.core.errors import TemporarilyUnavailable
from tokensmith.storage.sql.write_paths import WritePath

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Queues writes and hands them to ``path`` in batches of up to ``max_batch``, in up
    to ``lanes`` batches at once (PostgreSQL runs them in parallel; SQLite has one writer,
    so one lane).

    Over an :class:`~tokensmith.storage.sql.write_paths.AutocommitStatement` whose batch
    function is a lookup, the same serves reads: concurrent reads of one kind go out as
    one query (``WHERE key IN (...)``)."""

    def __init__(self, path: WritePath[T, R], *, lanes: int = 1, max_batch: int = 256) -> None:
        self._path = path
        self._lanes = lanes
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # the lanes now draining

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait until the transaction that wrote it has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if len(self._tasks) < self._lanes:
            self._tasks.add(loop.create_task(self._drain()))
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._commit(batch)
        finally:
            # Leave the set in the same step that saw the queue empty: a write queued
            # after this point finds a free lane and starts one.
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._path.write([item for item, _ in batch])
        except Exception as exc:  # retried one by one, or handed to its caller
            if len(batch) == 1 or isinstance(exc, TemporarilyUnavailable):
                for _, future in batch:
                    _settle(future, error=exc)
                return
            for one in batch:
                await self._commit([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(
    future: asyncio.Future[Any], result: Any = None, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
