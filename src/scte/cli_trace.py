"""`scte trace CORRELATION_ID`: the console's trace view in a terminal.

It reads the same data as `/console/traces`: the install's span store (`<data>/traces/spans.sqlite`,
written by every process `scte up` started), opened read-only, on the install's host (the file is 0600,
the operator's). Given the correlation id a member's page or a response's `X-Correlation-Id` showed, it
prints every hop of the action on one time axis: which service published what to which topic, which
service handled it from which queue, when each started after the action began, how long it ran and its
message waited, failures and retries (a retried handler shows once per try), and the total time until
the last effect. Work the action caused in a trace of its own (a mail the dispatcher sent later) carries
the same correlation id and is shown on the same axis, as the console does.

    scte trace 6f1c…                 the timeline of that action
    scte trace 6f1c… --json          the same as JSON (one object per span)

A malformed id is exit status 2; an id with no stored trace, or no span store, exit status 1: each
with a sentence that says why, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from scte.kit.spanstore import SpanRow

__all__ = ["trace"]

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # the console's rule (scte.web.console_traces)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"scte: {message}", err=True)
    return typer.Exit(code)


def _hop(span: SpanRow) -> tuple[str, str]:
    """What the span was (request, published, handled, other) and the topic or queue it went through."""
    destination = str(span.attributes.get("messaging.destination.name") or "")
    if span.kind == "producer":
        return "published", destination
    if span.kind == "consumer":
        return "handled", destination
    if span.kind == "server":
        return "request", ""
    return span.kind, ""


def _result(span: SpanRow) -> str:
    tries = span.attributes.get("scte.receive_count", 1)
    retry = f" (try {tries})" if isinstance(tries, int) and tries > 1 else ""
    if span.failed:
        return f"failed{retry}: {span.error or 'error'}"
    if span.attributes.get("scte.duplicate"):
        return f"duplicate{retry}"
    return f"ok{retry}"


def load(store_path: Path, wanted: str) -> tuple[list[str], list[SpanRow]]:
    """The trace ids of an action (its own first, then work it caused) and all their spans by start time."""
    from scte.kit.spanstore import SpanStore

    store = SpanStore(store_path, read_only=True)
    try:
        traces = [wanted] if _TRACE_ID.match(wanted) else []
        spans = store.trace(wanted) if traces else []
        correlation = spans[0].correlation_id if spans else wanted if not traces else None
        if correlation is not None:
            for other in store.traces_of(correlation):
                if other not in traces:
                    traces.append(other)
                    spans.extend(store.trace(other))
    finally:
        store.close()
    spans.sort(key=lambda s: (s.start_ns, s.end_ns))
    return traces, spans


def trace(
    correlation_id: Annotated[
        str,
        typer.Argument(help="The action's correlation id (X-Correlation-Id, or the page's reference); or a trace id."),
    ],
    data: Annotated[
        Path | None, typer.Option("--data", help="The install's data directory (default $SCTE_DATA_DIR or ./var).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """The timeline of one user action: every hop it caused, with times, failures and retries, and its total."""
    wanted = correlation_id.strip()
    if not _CORRELATION.match(wanted):
        raise _fail(f"{correlation_id!r} is not a correlation id or a trace id (letters, digits, - . : _; 1-64)", 2)
    from scte.web.console_traces import span_store_path, waterfall

    directory = data or Path(os.environ.get("SCTE_DATA_DIR", "./var"))
    path = span_store_path(directory)
    if not path.is_file():
        raise _fail(f"no span store at {path} (give --data of an install `scte up` ran)")
    try:
        traces, spans = load(path, wanted)
    except sqlite3.Error as exc:
        raise _fail(f"cannot read the span store {path}: {exc}") from None
    if not spans:
        raise _fail(f"no stored trace has the id {wanted} (unknown, or trimmed from the store)")
    layout = waterfall(spans)
    rows: list[dict[str, Any]] = []
    for row in layout["rows"]:
        span = row["span"]
        hop, via = _hop(span)
        rows.append(
            {
                "service": span.service,
                "hop": hop,
                "via": via,
                "what": row["what"],
                "start_ms": round(row["offset_ms"], 3),
                "duration_ms": round(span.duration_ms, 3),
                "queue_wait_ms": span.queue_wait_ms,
                "receive_count": span.attributes.get("scte.receive_count"),
                "failed": span.failed,
                "error": span.error,
                "result": _result(span),
                "trace_id": span.trace_id,
            }
        )
    correlation = next((s.correlation_id for s in spans if s.correlation_id), None)
    failures = sum(1 for s in spans if s.failed)
    total_ms = round(layout["total_ms"], 3)
    if as_json:
        summary = {"correlation_id": correlation, "traces": traces, "total_ms": total_ms, "failures": failures}
        typer.echo(json.dumps({**summary, "spans": rows}, indent=2))
        return
    console = Console(width=160, highlight=False)
    console.print(f"correlation id  {correlation or '-'}", markup=False)
    console.print(f"traces          {', '.join(traces)}", markup=False)
    table = Table(title=None)
    for column in ("start ms", "duration ms", "service", "hop", "topic / queue", "what ran", "queue wait ms", "result"):
        table.add_column(column, justify="right" if column.endswith("ms") else "left")
    for r in rows:
        wait = "-" if r["queue_wait_ms"] is None else f"{r['queue_wait_ms']:.1f}"
        cells = (f"{r['start_ms']:.1f}", f"{r['duration_ms']:.1f}", r["service"], r["hop"], r["via"] or "-")
        # Text, not markup: names and errors come from the spans, brackets and all
        table.add_row(*(Text(str(c)) for c in (*cells, r["what"], wait, r["result"])))
    console.print(table)
    services = sorted({s.service for s in spans})
    console.print(f"services        {', '.join(services)}", markup=False)
    console.print(f"failures        {failures}", markup=False)
    console.print(f"total           {total_ms:.1f} ms until the last effect ({len(spans)} spans)", markup=False)
