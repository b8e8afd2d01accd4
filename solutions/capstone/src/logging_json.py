"""Structured logs: one JSON object per line on stdout.

Why JSON? Log collectors (Loki, CloudWatch, `docker logs | jq`) can filter on fields such as status or
request_id without fragile regexes. Fields passed as `extra={"fields": {...}}` become top-level keys.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure_logging"]

_HANDLER_NAME = "capstone-json"


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON: time, level, logger, message, then the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str) -> None:
    """Send the `capstone.*` loggers to stdout as JSON; idempotent, so several apps in one process are fine.

    Uvicorn's own access log would add a second, plain-text line per request next to ours: turn it off with
    `UVICORN_ACCESS_LOG=false` (the image sets it) or `--no-access-log`. Not from here: other servers in the
    same process (notebooks, tests) may want theirs.
    """
    logger = logging.getLogger("capstone")
    logger.setLevel(level)
    logger.propagate = False
    if not any(handler.get_name() == _HANDLER_NAME for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
