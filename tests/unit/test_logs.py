"""Structured logs: JSON lines in Lambda, untouched logging elsewhere."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from chalicelib.logs import JsonFormatter, configure_logging
from chalicelib.settings import Settings


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("tickwork.executor").makeRecord(
        "tickwork.executor", logging.WARNING, "f.py", 1, message, args, None, extra=extra
    )
    made.created = 1_798_794_000.5  # 2027-01-01T09:00:00.500Z
    return made


def test_a_line_is_one_json_object_with_the_message_and_extras() -> None:
    line = JsonFormatter().format(record("job %s failed", "job_1", job_id="job_1"))
    assert json.loads(line) == {
        "time": "2027-01-01T09:00:00.500+00:00",
        "level": "WARNING",
        "logger": "tickwork.executor",
        "message": "job job_1 failed",
        "job_id": "job_1",
    }


def test_an_exception_stays_inside_its_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        broken = record("oops")
        broken.exc_info = sys.exc_info()
    line = JsonFormatter().format(broken)
    assert "\n" not in line
    assert json.loads(line)["exception"].endswith("ValueError: boom")


@pytest.fixture
def handlers() -> Iterator[tuple[logging.Handler, logging.Handler]]:
    """A root handler, and an app-logger handler as Chalice installs it."""
    root, app = logging.getLogger(), logging.getLogger("tickwork")
    saved = (root.handlers[:], app.handlers[:], app.level, app.propagate)
    root.handlers = [logging.StreamHandler()]
    app.handlers = [logging.StreamHandler()]
    app.setLevel(logging.ERROR)
    app.propagate = False
    yield root.handlers[0], app.handlers[0]
    root.handlers, app.handlers, _, app.propagate = saved
    app.setLevel(saved[2])


def test_only_lambda_gets_json_logs(handlers: tuple[logging.Handler, logging.Handler]) -> None:
    configure_logging(Settings())
    assert not any(isinstance(h.formatter, JsonFormatter) for h in handlers)

    in_lambda = Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "tickwork-dev-execute_jobs"})
    assert in_lambda.lambda_function_name == "tickwork-dev-execute_jobs"
    configure_logging(in_lambda)
    configure_logging(in_lambda)
    assert all(isinstance(h.formatter, JsonFormatter) for h in handlers)
    # Chalice's app logger is at ERROR: Tickwork's warnings and INFO lines get through
    assert logging.getLogger("tickwork.executor").isEnabledFor(logging.INFO)


def test_outside_lambda_the_setting_is_empty() -> None:
    assert Settings.from_env({}).lambda_function_name is None
