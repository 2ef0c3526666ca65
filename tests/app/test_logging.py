from __future__ import annotations

import json
import logging
import sys

import pytest

from app.logging_setup import JsonFormatter, configure_logging, request_id_var


def test_json_lines_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "INFO")
    token = request_id_var.set("req-123")
    try:
        logging.getLogger("api").info("hello", extra={"path": "/x"})
    finally:
        request_id_var.reset(token)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["msg"] == "hello"
    assert entry["request_id"] == "req-123"
    assert entry["path"] == "/x"
    assert entry["level"] == "info"


def test_console_format_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("console", "INFO")
    logging.getLogger("api").warning("careful")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "WARNING" in line and "careful" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_json_formatter_keeps_exceptions_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    out = JsonFormatter().format(record)
    assert "\n" not in out
    assert "boom" in json.loads(out)["exc"]
