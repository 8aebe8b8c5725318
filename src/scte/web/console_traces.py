"""The console's trace view (`/console/traces`): recent user actions, and one action's spans as a waterfall.

Who may open it: staff only (a member or a company admin gets 403, a signed-out visitor sign-in).

What it shows: the install's span store (`scte.kit.spanstore`, written by every process in embedded
mode). The list holds the recent user actions (a visitor's request at the gateway that changed
something; page views are left out) with their total time until the last effect, the number of
spans and the services they reached; a correlation id (answered in every response's
`X-Correlation-Id`) or a trace id finds one. An action's page draws each span as a bar on one time
axis (SVG, no script) and lists the same in a table: service, what ran (request, publish, handler),
when it started after the action, its duration, the time its message waited in the queue, and
failures (a retried handler shows twice, the failed try marked).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from scte.kit.spanstore import SpanRow, SpanStore
from scte.web.client import ServiceDown, ServiceError
from scte.web.site import Page, role_page

__all__ = ["router", "waterfall"]

router = APIRouter(include_in_schema=False)

Staff = Annotated[Page, Depends(role_page("staff"))]

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
WATERFALL_WIDTH = 600
ROW_HEIGHT = 22
LABEL_WIDTH = 300


def span_store_path(data_dir: Path) -> Path:
    """Where `scte up`'s processes write their spans (`Settings.span_store_path`)."""
    return data_dir / "traces" / "spans.sqlite"


def _store(page: Page) -> SpanStore:
    store = getattr(page.request.app.state, "span_store", None)
    if not isinstance(store, SpanStore):
        raise ServiceDown("span store", "the gateway has no span store (embedded mode only)")
    return store


def waterfall(spans: list[SpanRow]) -> dict[str, Any]:
    """Each span's bar on one time axis from the first span's start: x and width in the SVG's units."""
    if not spans:
        return {"rows": [], "total_ms": 0.0, "width": WATERFALL_WIDTH, "height": 0}
    first = min(s.start_ns for s in spans)
    last = max(s.end_ns for s in spans)
    total = max(last - first, 1)
    rows = []
    for index, span in enumerate(spans):
        x = (span.start_ns - first) / total * WATERFALL_WIDTH
        width = max(1.0, (span.end_ns - span.start_ns) / total * WATERFALL_WIDTH)
        wait = span.queue_wait_ms
        wait_width = min(x, (wait * 1e6) / total * WATERFALL_WIDTH) if wait else 0.0
        rows.append(
            {
                "span": span,
                "y": index * ROW_HEIGHT,
                "x": round(LABEL_WIDTH + x, 2),
                "width": round(width, 2),
                "wait_x": round(LABEL_WIDTH + x - wait_width, 2),
                "wait_width": round(wait_width, 2),
                "offset_ms": (span.start_ns - first) / 1e6,
                "what": _what(span),
            }
        )
    return {
        "rows": rows,
        "total_ms": total / 1e6,
        "width": LABEL_WIDTH + WATERFALL_WIDTH + 10,
        "height": len(rows) * ROW_HEIGHT + 4,
        "label_width": LABEL_WIDTH,
        "row_height": ROW_HEIGHT,
    }


def _what(span: SpanRow) -> str:
    attributes = span.attributes
    if span.kind == "consumer":
        handler = attributes.get("scte.handler") or "handler"
        return f"{handler} ({attributes.get('scte.event_type', '?')})"
    if span.kind == "producer":
        return (
            f"publish {attributes.get('scte.event_type', '?')} to {attributes.get('messaging.destination.name', '?')}"
        )
    return span.name


@router.get("/console/traces")
async def traces(page: Staff) -> Response:
    """Recent actions; `?q=` a correlation id (or a trace id) goes to its trace."""
    store = _store(page)
    query = (page.request.query_params.get("q") or "").strip()
    if query:
        if _TRACE_ID.match(query):
            return page.redirect(f"/console/traces/{query}")
        if not _CORRELATION.match(query):
            return await _list(
                page, store, query, "Enter a correlation id or a trace id (letters, digits, - . : _).", 400
            )
        found = await asyncio.to_thread(store.traces_of, query)
        if not found:
            return await _list(page, store, query, "No stored trace has that correlation id.", 404)
        return page.redirect(f"/console/traces/{found[0]}")  # the action's own trace
    return await _list(page, store, query, None, 200)


async def _list(page: Page, store: SpanStore, query: str, error: str | None, status: int) -> Response:
    actions = await asyncio.to_thread(store.actions, 50)
    return page.render(
        "console/traces.html",
        status=status,
        title="Traces of user actions",
        actions=actions,
        q=query,
        error=error,
    )


@router.get("/console/traces/{trace_id}")
async def trace(trace_id: str, page: Staff) -> Response:
    if not _TRACE_ID.match(trace_id):
        raise ServiceError(404, "not_found", "There is no such trace.")
    store = _store(page)
    spans = await asyncio.to_thread(store.trace, trace_id)
    if not spans:
        raise ServiceError(404, "not_found", "There is no such trace (it may have been trimmed from the store).")
    root = spans[0]
    # Work the action caused that began a trace of its own (a mail the dispatcher sent after the handler,
    # and what handled its notice) carries the action's correlation id: shown on the same timeline.
    continued: list[str] = []
    if root.correlation_id is not None:
        others = [t for t in await asyncio.to_thread(store.traces_of, root.correlation_id) if t != trace_id]
        for other in others:
            spans.extend(await asyncio.to_thread(store.trace, other))
            continued.append(other)
        spans.sort(key=lambda s: (s.start_ns, s.end_ns))
    layout = waterfall(spans)
    services = sorted({s.service for s in spans})
    return page.render(
        "console/trace.html",
        title=f"Trace {trace_id}",
        trace_id=trace_id,
        root=root,
        services=services,
        failed=sum(1 for s in spans if s.failed),
        continued=continued,
        **layout,
    )
