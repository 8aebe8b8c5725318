"""The install's store of recent spans: one SQLite file every process writes its spans to.

In embedded mode (`scte up`) each service and the gateway export their finished spans here, from
the SDK's batch processor thread (never on the event loop), and the console's trace view reads them
back: the recent user actions, and the spans of one trace. The file is bounded: past `max_spans`
rows the oldest are deleted (a range delete on the row id, cheap however large the table). It lives
under the data directory, mode 0600 (paths and ids of members are in it).

Spans are rows, not OTLP: the view needs a handful of fields, and any process can write them with the
standard library. Production sends spans over OTLP instead (`scte.kit.tracing`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult

__all__ = ["DEFAULT_MAX_SPANS", "ENTRY_ATTRIBUTE", "Action", "SpanRow", "SpanStore", "SpanStoreExporter"]

log = logging.getLogger(__name__)

ENTRY_ATTRIBUTE = "scte.entry"
"""Set on the gateway's span of a visitor's request: where a user action starts, whatever its parent."""
DEFAULT_MAX_SPANS = 50_000
"""About 25 MB: a day of a small install's actions, or the last few thousand of a busy one."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_id TEXT,
    is_root INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    service TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    error TEXT,
    correlation_id TEXT,
    attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
CREATE INDEX IF NOT EXISTS spans_correlation ON spans (correlation_id);
CREATE INDEX IF NOT EXISTS spans_roots ON spans (is_root, id);
"""
_INSERT = (
    "INSERT INTO spans (trace_id, span_id, parent_id, is_root, name, kind, service, start_ns, end_ns, failed,"
    " error, correlation_id, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_KEPT_ATTRIBUTES = (
    "http.request.method",
    "http.route",
    "http.response.status_code",
    "messaging.destination.name",
    "messaging.message.id",
    "scte.handler",
    "scte.event_type",
    "scte.queue_wait_ms",
    "scte.receive_count",
    "scte.duplicate",
)


@dataclass(frozen=True)
class SpanRow:
    """One span as the trace view shows it."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    failed: bool
    error: str | None
    correlation_id: str | None
    attributes: dict[str, Any]

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def queue_wait_ms(self) -> float | None:
        value = self.attributes.get("scte.queue_wait_ms")
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class Action:
    """A recent root span (a user's request at the gateway, a scheduled delivery) and its trace's extent."""

    trace_id: str
    name: str
    service: str
    correlation_id: str | None
    start_ns: int
    total_ms: float
    spans: int
    services: tuple[str, ...]
    failed: bool


class SpanStore:
    """The span file: `write` (from any process, any thread), `actions` and `trace` (the console)."""

    def __init__(self, path: Path, *, max_spans: int = DEFAULT_MAX_SPANS, read_only: bool = False) -> None:
        self.path = path
        self.max_spans = max_spans
        self.read_only = read_only
        """Open an existing file for reading only (`scte trace`): never creates, never writes."""
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None and self.read_only:
            self._conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0, check_same_thread=False
            )
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileExistsError):  # created 0600 before SQLite opens it
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
            with contextlib.suppress(sqlite3.OperationalError):  # another process is setting it: same result
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert span rows (as `row_of` makes them) and trim the oldest past `max_spans`."""
        if not rows:
            return
        with self._lock:
            conn = self._connect()
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                cursor = conn.executemany(_INSERT, rows)
                last = cursor.lastrowid or conn.execute("SELECT max(id) FROM spans").fetchone()[0] or 0
                conn.execute("DELETE FROM spans WHERE id <= ?", (int(last) - self.max_spans,))

    def count(self) -> int:
        with self._lock:
            return int(self._connect().execute("SELECT count(*) FROM spans").fetchone()[0])

    def actions(self, limit: int = 50, *, include_reads: bool = False) -> list[Action]:
        """The most recent root spans, newest first, with their traces' span counts and services.
        Page views and other reads at the gateway (GET, HEAD) are left out unless `include_reads`."""
        with self._lock:
            conn = self._connect()
            roots = conn.execute(
                "SELECT id, trace_id, name, kind, service, correlation_id, start_ns, failed, attributes FROM spans"
                " WHERE is_root = 1 ORDER BY id DESC LIMIT ?",
                (limit * 10,),
            ).fetchall()
            picked = []
            for row_id, trace_id, name, kind, service, correlation, start_ns, failed, attributes in roots:
                method = json.loads(attributes).get("http.request.method")
                if not include_reads and method in ("GET", "HEAD", "OPTIONS"):
                    continue
                if kind != "server" and correlation is not None and self._continues(conn, correlation, row_id):
                    continue  # later work of an action, listed under the action's own trace (see `traces_of`)
                picked.append((trace_id, name, service, correlation, start_ns, bool(failed)))
                if len(picked) == limit:
                    break
            out = []
            for trace_id, name, service, correlation, start_ns, failed in picked:
                count, services, first, last, any_failed = conn.execute(
                    "SELECT count(*), group_concat(DISTINCT service), min(start_ns), max(end_ns), max(failed)"
                    " FROM spans WHERE trace_id = ?",
                    (trace_id,),
                ).fetchone()
                out.append(
                    Action(
                        trace_id,
                        name,
                        service,
                        correlation,
                        start_ns,
                        (last - first) / 1e6,
                        int(count),
                        tuple(sorted(set((services or "").split(",")))),
                        failed or bool(any_failed),
                    )
                )
            return out

    def trace(self, trace_id: str) -> list[SpanRow]:
        """Every stored span of a trace, by start time."""
        with self._lock:
            rows = (
                self._connect()
                .execute(
                    "SELECT trace_id, span_id, parent_id, name, kind, service, start_ns, end_ns, failed, error,"
                    " correlation_id, attributes FROM spans WHERE trace_id = ? ORDER BY start_ns, id",
                    (trace_id,),
                )
                .fetchall()
            )
        return [
            SpanRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9], r[10], json.loads(r[11]))
            for r in rows
        ]

    @staticmethod
    def _continues(conn: sqlite3.Connection, correlation: str, row_id: int) -> bool:
        """Whether the root at `row_id` (not a request) is work an action caused outside its trace (a mail
        a dispatcher loop sent after the handler): a request's root, or an earlier root, has its
        correlation id. (Not by order alone: the request's span ends, and is stored, last.)"""
        other = conn.execute(
            "SELECT 1 FROM spans WHERE correlation_id = ? AND is_root = 1 AND (kind = 'server' OR id < ?) LIMIT 1",
            (correlation, row_id),
        ).fetchone()
        return other is not None

    def traces_of(self, correlation_id: str, limit: int = 20) -> list[str]:
        """The trace ids whose spans carry this correlation id: first the action's own (rooted in a request),
        then, in the order they were stored, work it caused that began a trace of its own."""
        with self._lock:
            rows = (
                self._connect()
                .execute(
                    "SELECT trace_id, min(id) AS first, max(is_root = 1 AND kind = 'server') AS request FROM spans"
                    " WHERE correlation_id = ? GROUP BY trace_id ORDER BY request DESC, first LIMIT ?",
                    (correlation_id, limit),
                )
                .fetchall()
            )
        return [r[0] for r in rows]


def row_of(span: ReadableSpan) -> tuple[Any, ...] | None:
    """The store's row of a finished SDK span (None for a span without a valid context)."""
    context = span.context
    if context is None or not context.is_valid:
        return None
    attributes = dict(span.attributes or {})
    parent = span.parent
    parent_id = format(parent.span_id, "016x") if parent is not None and parent.is_valid else None
    service = attributes.get("scte.service") or span.resource.attributes.get("service.name") or "unknown"
    status = span.status
    failed = not status.is_ok and not status.is_unset
    kept = {k: attributes[k] for k in _KEPT_ATTRIBUTES if k in attributes}
    correlation = attributes.get("scte.correlation_id")
    return (
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        parent_id,
        # a root: no parent, or the gateway's request span under a traceparent its caller sent
        1 if parent_id is None or attributes.get(ENTRY_ATTRIBUTE) is True else 0,
        span.name,
        span.kind.name.lower(),
        str(service),
        span.start_time or 0,
        span.end_time or span.start_time or 0,
        1 if failed else 0,
        status.description if failed else None,
        str(correlation) if correlation else None,
        json.dumps(kept, separators=(",", ":"), default=str),
    )


class SpanStoreExporter:
    """An OpenTelemetry `SpanExporter` writing to a `SpanStore` (made lazily, so this module needs no SDK
    import of its own: `scte.kit.tracing` wraps it in the SDK's batch processor)."""

    def __init__(self, path: Path, *, max_spans: int = DEFAULT_MAX_SPANS) -> None:
        self.store = SpanStore(path, max_spans=max_spans)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        from opentelemetry.sdk.trace.export import SpanExportResult

        rows = [row for row in (row_of(s) for s in spans) if row is not None]
        try:
            self.store.write(rows)
        except sqlite3.Error as exc:  # locked past the timeout, disk full: these spans are lost, not the process
            log.warning("span store: %d spans not written: %s", len(rows), exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.store.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
