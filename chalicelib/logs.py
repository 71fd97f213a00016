"""Structured logs in Lambda: one JSON object per line, for CloudWatch Logs Insights.

`configure_logging(settings)` runs once per cold start (from `services()`).
Outside Lambda it changes nothing: tests, the local stack and scripts keep
their own logging. Standard library only (cold start).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from chalicelib.settings import Settings

#: Attributes every LogRecord has; anything else was passed with `extra=`.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...}`: the Lambda request id when
    the runtime sets one (`aws_request_id`), `extra=` fields, and `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


#: Parent of every Tickwork logger, and Chalice's app logger (the app's name).
APP_LOGGER = "tickwork"


def configure_logging(settings: Settings) -> None:
    """In Lambda, make the log handlers write JSON lines and let Tickwork's INFO
    lines through; elsewhere do nothing. Safe to call twice.

    Chalice gives its app logger (`tickwork`, the parent of every Tickwork
    logger) a stdout handler of its own, level ERROR and no propagation; so
    that handler is formatted too and the level lowered, or Tickwork's
    warnings would never reach CloudWatch. Other libraries log through the
    root logger, whose handler the Lambda runtime installs."""
    if settings.lambda_function_name is None:
        return
    root = logging.getLogger()
    app = logging.getLogger(APP_LOGGER)
    if not root.handlers:  # the Lambda runtime installs one; be safe without it
        root.addHandler(logging.StreamHandler(sys.stdout))
    for handler in [*root.handlers, *app.handlers]:
        handler.setFormatter(JsonFormatter())
    app.setLevel(logging.INFO)
