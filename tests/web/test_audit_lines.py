"""Audit events written directly (:class:`tokensmith.logs.AuditLog`) are the same lines the
``logging`` record path writes, and logging configured otherwise still receives them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from tokensmith.logs import AuditLog, configure_logging

FIELDS = {
    "event": "token.issued",
    "client_id": "abc",
    "scope": "read write",
    "source": "10.0.0.1\nforged line",
}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    ts_logger = logging.getLogger("tokensmith")
    audit = logging.getLogger("tokensmith.audit")
    saved = (ts_logger.handlers[:], ts_logger.level, ts_logger.propagate, audit.handlers[:])
    yield
    ts_logger.handlers[:], ts_logger.level, ts_logger.propagate, audit.handlers[:] = saved


def _configured(json_logs: bool, level: str = "INFO") -> io.StringIO:
    configure_logging(json_logs, level)
    buf = io.StringIO()
    handler = logging.getLogger("tokensmith").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buf)
    return buf


def _without_time(line: str, json_logs: bool) -> str:
    if json_logs:
        body = orjson.loads(line)
        body.pop("ts")
        return orjson.dumps(body).decode()
    return line.split(" ", 2)[2]  # drop date and time


@pytest.mark.parametrize("json_logs", [True, False], ids=["json", "text"])
def test_direct_audit_line_matches_the_record_path(json_logs: bool, restore_logging: None) -> None:
    buf = _configured(json_logs)
    AuditLog().event("token issued", FIELDS)
    logging.getLogger("tokensmith.audit").info("token issued", extra=dict(FIELDS))
    direct, via_record = buf.getvalue().splitlines()
    assert _without_time(direct, json_logs) == _without_time(via_record, json_logs)


def test_text_line_escapes_line_breaks(restore_logging: None) -> None:
    buf = _configured(False)
    AuditLog().event("token issued", FIELDS)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1
    assert "source='10.0.0.1\\nforged line'" in lines[0]
    assert " INFO tokensmith.audit token issued event=token.issued client_id=abc " in lines[0]


def test_json_line_has_time_level_logger_and_fields(restore_logging: None) -> None:
    buf = _configured(True)
    AuditLog().event("token issued", FIELDS)
    body = orjson.loads(buf.getvalue())
    assert body.pop("ts") > 0
    assert body == {"level": "info", "logger": "tokensmith.audit", "msg": "token issued", **FIELDS}


def test_level_above_info_writes_nothing(restore_logging: None) -> None:
    buf = _configured(True, "WARNING")
    AuditLog().event("token issued", FIELDS)
    assert buf.getvalue() == ""


def test_other_logging_setups_get_records_with_the_fields(
    restore_logging: None, caplog: pytest.LogCaptureFixture
) -> None:
    # not configured by tokensmith (an embedding application, pytest's capture): records
    logging.getLogger("tokensmith").handlers[:] = []
    logging.getLogger("tokensmith").propagate = True
    with caplog.at_level(logging.INFO, logger="tokensmith.audit"):
        AuditLog().event("token issued", FIELDS)
    (record,) = [r for r in caplog.records if r.name == "tokensmith.audit"]
    assert record.getMessage() == "token issued"
    assert record.client_id == "abc" and record.scope == "read write"


def test_a_handler_added_to_the_audit_logger_gets_records(restore_logging: None) -> None:
    buf = _configured(True)
    extra = io.StringIO()
    logging.getLogger("tokensmith.audit").addHandler(logging.StreamHandler(extra))
    AuditLog().event("token issued", FIELDS)
    assert "token issued" in extra.getvalue()
    assert "token.issued" in buf.getvalue()
