"""Structured logging. Secrets, tokens and Authorization headers are never logged:
nothing here formats request bodies or headers, and the JSON formatter writes only
the fields the code names."""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

__all__ = ["JsonFormatter", "configure_logging"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                body[key] = value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(body, default=str).decode()


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        pairs = " ".join(f"{k}={_text(v)}" for k, v in extras.items())
        return base + (" " + pairs if pairs else "")


def _text(value: Any) -> str:
    """A value as it is, unless it holds line breaks or other controls: then its repr, so a
    client-chosen string cannot forge a log line."""
    text = str(value)
    return text if text.isprintable() else repr(text)


def configure_logging(json_logs: bool, level: str = "INFO") -> None:
    """One handler on the ``tokensmith`` loggers. Records skip the caller lookup and the
    thread and process fields (the "Optimization" section of the logging docs): an audit
    record is written for every token, so it has to be cheap."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_logs
        else _TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger("tokensmith")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
