"""A database that cannot be reached becomes one core error, at the engine.

A refused or dropped connection, a pool that has no connection to give within its
timeout, a PostgreSQL shutting down, a SQLite file locked past the busy timeout or that
cannot be opened: each reaches the caller as
:class:`~tokensmith.core.errors.TemporarilyUnavailable` (RFC 6749 §4.1.2.1), which every
endpoint renders as a 503 with ``Retry-After`` in its own dialect. Any other database error
(a constraint, a statement the schema refuses) stays what it was.

The translation happens where the errors come out of SQLAlchemy, so no handler or store
method has to know about it, and it costs nothing while the database answers:

* :func:`watch` listens to the engine's ``handle_error`` event, which sees every error of a
  statement, a transaction or a new connection's handshake;
* :class:`OutagePool` covers what never reaches that event: the pool's timeout and the
  ``OSError`` of a connection refused before any handshake;
* the SQLite writer's thread (:mod:`~tokensmith.storage.sql.sqlite_writer`) calls
  :func:`unavailable_or_none` on what its transactions raise.

The pool throws away a connection that failed this way (SQLAlchemy invalidates it, and
every connection older than it), so once the database is back the next request opens a
new one: nothing needs a restart.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from time import monotonic

from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection

from tokensmith.core.errors import TemporarilyUnavailable

__all__ = ["OutagePool", "is_outage", "unavailable", "unavailable_or_none", "watch"]

log = logging.getLogger("tokensmith.storage")

#: What SQLite says when the file is locked past ``busy_timeout`` or cannot be used.
SQLITE_OUTAGES = ("database is locked", "unable to open database file", "disk i/o error")
#: PostgreSQL SQLSTATEs of a server that cannot serve now: class 08 (connection
#: exception) and these: shutting down (57P01, 57P02), starting up (57P03), no free
#: connection slot (53300).
PG_OUTAGE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
#: Seconds between two log lines about an outage: one per request would flood the log.
LOG_EVERY = 10.0
_last_logged = float("-inf")


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) says the database cannot be reached or used
    now, rather than that it refused a statement."""
    return any(_says_outage(e) for e in _chain(error))


def unavailable(error: BaseException) -> TemporarilyUnavailable:
    """The core error for an outage whose cause is ``error`` (logged, at most every
    :data:`LOG_EVERY` seconds; the message names the error's type only, never its text,
    which may hold a statement's parameters)."""
    global _last_logged
    now = monotonic()
    if now - _last_logged >= LOG_EVERY:
        _last_logged = now
        log.warning(
            "database unavailable (%s); answering 503 temporarily_unavailable",
            type(error).__name__,
            extra={"event": "database.unavailable", "cause": type(error).__name__},
        )
    return TemporarilyUnavailable(reason="database_unavailable")


def unavailable_or_none(error: BaseException) -> TemporarilyUnavailable | None:
    """:func:`unavailable` if ``error`` is an outage, else ``None``."""
    return unavailable(error) if is_outage(error) else None


def watch(engine: Engine) -> None:
    """Translate outages on ``engine`` (the ``sync_engine`` of an async one)."""
    event.listen(engine, "handle_error", _on_error)


def _on_error(context: ExceptionContext) -> TemporarilyUnavailable | None:
    """SQLAlchemy's ``handle_error``: the returned exception is raised in place of the
    original, after SQLAlchemy has invalidated a lost connection. Left alone: a pre-ping's
    failure (the pool answers it with a new connection), and a cancellation, which
    SQLAlchemy counts as a disconnect but which must reach the cancelled task as such."""
    error = context.original_exception
    if context.is_pre_ping or not isinstance(error, Exception):
        return None
    if context.is_disconnect or is_outage(error):
        return unavailable(error)
    return None


class OutagePool(AsyncAdaptedQueuePool):
    """The async engine's pool; a checkout that fails for an outage raises
    :class:`TemporarilyUnavailable`."""

    def connect(self) -> PoolProxiedConnection:
        try:
            return super().connect()
        except Exception as error:
            if is_outage(error):
                raise unavailable(error) from error
            raise


# SQLAlchemy names a pool's logger after its class, which puts this pool's chatter
# ("Pool disposed", "Pool recreating") under tokensmith's logger at INFO; it belongs at
# the level of sqlalchemy.pool's own loggers, which say only warnings by default.
logging.getLogger(f"{OutagePool.__module__}.{OutagePool.__name__}").setLevel(logging.WARNING)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, the driver's error it wraps, and their causes (a few levels)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo and len(seen) < 8:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        yield current
        todo.append(current.__cause__)
        if isinstance(current, sa_exc.DBAPIError):
            todo.append(current.orig)


def _says_outage(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, OSError | sa_exc.TimeoutError):  # refused, reset; pool timeout
        return True
    state = getattr(error, "sqlstate", None)
    if isinstance(state, str) and (state.startswith("08") or state in PG_OUTAGE_STATES):
        return True
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return any(m in message for m in SQLITE_OUTAGES)
    return False
