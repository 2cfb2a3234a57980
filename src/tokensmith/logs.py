"""Structured logging. Secrets, tokens and Authorization headers are never logged:
nothing here formats request bodies or headers, and the formatters write only
the fields the code names."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["AuditLog", "JsonFormatter", "LineHandler", "configure_logging"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _extras(record)
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return self.line(record.created, record.levelname, record.name, record.getMessage(), fields)

    def line(
        self, created: float, level: str, name: str, msg: str, fields: Mapping[str, Any]
    ) -> str:
        """The line for one event: the record path and :class:`AuditLog` share it."""
        body: dict[str, Any] = {
            "ts": round(created, 3),
            "level": level.lower(),
            "logger": name,
            "msg": msg,
        }
        body.update(fields)
        return orjson.dumps(body, default=str).decode()


class TextFormatter(logging.Formatter):
    """``asctime level logger message key=value ...``; values with line breaks or other
    controls are written as their ``repr``, so a client-chosen string cannot forge a line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        return base + _pairs(_extras(record))

    def line(
        self, created: float, level: str, name: str, msg: str, fields: Mapping[str, Any]
    ) -> str:
        """What :meth:`format` writes for a record without exception, built directly."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(self.default_time_format, self.converter(created))
        millis = int((created - second) * 1000)
        return f"{self._stamp},{millis:03d} {level} {name} {msg}{_pairs(fields)}"


def _pairs(fields: Mapping[str, Any]) -> str:
    return "".join(f" {k}={_text(v)}" for k, v in fields.items())


def _text(value: Any) -> str:
    text = str(value)
    return text if text.isprintable() else repr(text)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The ``tokensmith`` handler; :class:`AuditLog` writes its lines here directly.

    Lines logged while an event loop runs go out together when the loop's current pass
    ends (``call_soon``): one ``write`` for all the requests a worker answered in that
    pass instead of one for each.  Outside a loop a line is written at once, and
    :meth:`flush` (called by ``close`` and at exit) writes whatever waits.  Records logged
    the usual way take the same queue, so lines keep their order."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []

    def write_line(self, level: str, name: str, msg: str, fields: Mapping[str, Any]) -> None:
        formatter = self.formatter
        assert isinstance(formatter, JsonFormatter | TextFormatter)
        self._put(formatter.line(time.time(), level, name, msg, fields))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # the logging module's contract: report, never raise
            self.handleError(record)
            return
        self._put(text)

    def _put(self, text: str) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(text)
            if len(self._pending) > 1:
                return  # a write is already due
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
        else:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                lines, self._pending = self._pending, []
                self.stream.write(self.terminator.join(lines) + self.terminator)
            super().flush()

    def close(self) -> None:
        self.flush()
        super().close()


class AuditLog:
    """Audit events: one line each for every issuance and refusal.

    Written straight to the handler that :func:`configure_logging` installed, in its format,
    without a ``LogRecord``: one is written for every token, and the record machinery cost
    a fifth of a token request's CPU. Where logging is configured otherwise (an embedding
    application, tests with their own handlers), events go through the ``logging`` call as
    usual, with the fields as ``extra``.
    """

    def __init__(self, name: str = "tokensmith.audit") -> None:
        self._logger = logging.getLogger(name)
        self._root = logging.getLogger(name.split(".", 1)[0])

    def event(self, msg: str, fields: Mapping[str, Any]) -> None:
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = self._direct_handler()
        if handler is None:
            logger.info(msg, extra=dict(fields))
        else:
            handler.write_line("INFO", logger.name, msg, fields)

    def _direct_handler(self) -> LineHandler | None:
        logger, root = self._logger, self._root
        if logger.handlers or logger.filters or root.filters or root.propagate:
            return None
        handlers = root.handlers
        if len(handlers) != 1 or type(handlers[0]) is not LineHandler:
            return None
        handler = handlers[0]
        if handler.level > logging.INFO or handler.filters:
            return None
        return handler


def configure_logging(json_logs: bool, level: str = "INFO") -> None:
    """One handler on the ``tokensmith`` loggers, and nothing else: other libraries'
    logging and the ``logging`` module's process-wide settings are left as they are. The
    token path makes no ``LogRecord`` (:class:`AuditLog` writes its lines directly), so
    the records' caller lookup and thread and process fields cost only the rare record
    logged the usual way."""
    handler = LineHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else TextFormatter())
    root = logging.getLogger("tokensmith")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
