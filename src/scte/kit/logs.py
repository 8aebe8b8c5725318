"""A process's log: one JSON object per line, each naming its service, trace and correlation.

Every line has `time` (RFC 3339, UTC), `level`, `service`, `logger`, `message`, and, when there is
one, the current span's `trace_id` and `span_id` and the work's `correlation_id` (the user action or
event conversation it belongs to); a line about a request adds its `method`, `path`, `status` and
`duration_ms` (`scte.kit.observability` writes one such line per request, at INFO); an exception adds
`error` (the formatted traceback). `grep` for a correlation id finds every line of a user action in
every service's log.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from scte.bus import observe
from scte.kit import tracing

__all__ = ["JsonFormatter", "configure_logging"]

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = tracing.current_ids()
        if ids is not None:
            line["trace_id"], line["span_id"] = ids
        correlation = observe.correlation_id.get()
        if correlation is not None:
            line["correlation_id"] = correlation
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_logging(service: str, level: str = "info") -> None:
    """JSON lines on stderr for the whole process (replacing any handler the root logger had)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
