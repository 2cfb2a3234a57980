"""Audit events written directly (:class:`tokensmith.logs.AuditLog`) are the same lines the
``logging`` record path writes, and logging configured otherwise still receives them."""

from __future__ import annotations

import asyncio
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


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def _counting(json_logs: bool = False) -> tuple[_CountingStream, logging.Handler]:
    configure_logging(json_logs)
    stream = _CountingStream()
    handler = logging.getLogger("tokensmith").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    stream.writes = 0
    return stream, handler


async def test_lines_of_one_loop_pass_go_out_in_one_write_in_order(
    restore_logging: None,
) -> None:
    stream, _ = _counting()
    for n in range(3):
        AuditLog().event(f"token issued {n}", FIELDS)
    logging.getLogger("tokensmith.web").warning("a record the usual way")
    AuditLog().event("token issued 3", FIELDS)
    assert stream.writes == 0  # due at the end of this pass
    await asyncio.sleep(0)
    lines = stream.getvalue().splitlines()
    assert stream.writes == 1 and len(lines) == 5
    assert [line.split(" ", 4)[4].split(" ")[:3] for line in lines] == [
        ["token", "issued", "0"],
        ["token", "issued", "1"],
        ["token", "issued", "2"],
        ["a", "record", "the"],
        ["token", "issued", "3"],
    ]


def test_a_line_outside_an_event_loop_is_written_at_once(restore_logging: None) -> None:
    stream, _ = _counting()
    AuditLog().event("token issued", FIELDS)
    assert stream.writes == 1 and stream.getvalue().count("\n") == 1


async def test_lines_still_waiting_are_written_at_close(restore_logging: None) -> None:
    stream, handler = _counting(json_logs=True)
    AuditLog().event("token issued", FIELDS)
    handler.close()
    assert orjson.loads(stream.getvalue())["msg"] == "token issued"


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_configuring_logging_leaves_other_libraries_records_whole(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An application embedding tokensmith keeps the caller, thread and process fields of
    its own (and other libraries') records: only the ``tokensmith`` loggers are set up."""
    for flag in ("logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, flag, True)
    configure_logging(json_logs=True)
    kept = _Kept()
    other = logging.getLogger("an.embedding.application")
    other.addHandler(kept)
    try:
        other.warning("hello")
    finally:
        other.removeHandler(kept)
    (record,) = kept.records
    assert record.funcName == "test_configuring_logging_leaves_other_libraries_records_whole"
    assert record.threadName is not None and record.processName is not None
    assert record.process is not None
