"""What a service (and the gateway) does on every request and every message to be observable.

`RequestObserver`, an ASGI middleware on every app: an HTTP server span (its parent the caller's
`traceparent`), the request's correlation id (the gateway makes one per visitor's request and answers
it in `X-Correlation-Id`; a service takes the gateway's), the latency histogram, and one JSON log line
per request (`scte.access`, INFO). `BusObserver`, the bus's observer (`scte.bus.observe`): a producer
span per publish, a consumer span per handler whose parent is the span that published its event
(the envelope's trace context), handler latency and queue wait, and one JSON line per message handled
(`scte.handler`, INFO). `configure()` sets all of it up for a
process: JSON logs, the tracer provider (`scte.kit.tracing`), the bus observer.

One pure ASGI layer for the three, not OpenTelemetry's ASGI instrumentation and a metrics middleware
and an access logger: each request is timed, named and its status read once. `/health`, `/metrics`
and static files get no span and no line (the console polls health every few seconds).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scte.bus import observe
from scte.ids import new_uuid7
from scte.kit import tracing
from scte.kit.metrics import HANDLER_SECONDS, QUEUE_WAIT_SECONDS, REQUEST_SECONDS
from scte.kit.spanstore import ENTRY_ATTRIBUTE

if TYPE_CHECKING:
    from scte.bus.envelope import Envelope
    from scte.bus.transport import IncomingMessage
    from scte.kit.settings import Settings

__all__ = ["CORRELATION_HEADER", "BusObserver", "RequestObserver", "configure", "valid_correlation_id"]

access_log = logging.getLogger("scte.access")
handler_log = logging.getLogger("scte.handler")

CORRELATION_HEADER = "x-correlation-id"
_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_QUIET_PATHS = frozenset({"/health", "/metrics", "/favicon.ico"})
SERVICE = tracing.SERVICE_ATTRIBUTE
CORRELATION = tracing.CORRELATION_ATTRIBUTE


def valid_correlation_id(value: str | None) -> bool:
    return value is not None and _CORRELATION.match(value) is not None


def _route(scope: Scope) -> str:
    """The matched route's template (`/members/{member_id}`): bounded label values, and no ids or
    tokens of the path in spans, metrics or logs. The gateway's proxy route names its service."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return "unmatched"
    if "{service}" in template:
        service = scope.get("path_params", {}).get("service")
        if isinstance(service, str) and service.isidentifier():
            template = template.replace("{service}", service)
    return template


class RequestObserver:
    """Spans, latency, correlation and the access line of each HTTP request (see the module docstring).
    `entry=True` on the gateway: the visitor's request starts a user action (a fresh correlation id,
    whatever the visitor sent, and a span the span store lists as the action's root)."""

    def __init__(self, app: ASGIApp, service: str, entry: bool = False) -> None:
        self.app = app
        self.service = service
        self.entry = entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _QUIET_PATHS or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            if key in (b"traceparent", b"tracestate", b"x-correlation-id"):
                headers[key.decode("latin-1")] = value.decode("latin-1")
        given = headers.get(CORRELATION_HEADER)
        correlation = given if given is not None and not self.entry and valid_correlation_id(given) else new_uuid7()
        reset = observe.correlation_id.set(correlation)
        span = None
        if tracing.enabled():
            attributes: dict[str, Any] = {
                SERVICE: self.service,
                "http.request.method": method,
                CORRELATION: correlation,
            }
            if self.entry:
                attributes[ENTRY_ATTRIBUTE] = True
            span = tracing.start_span(f"{method}", SpanKind.SERVER, attributes, tracing.extract(headers))
        status = 500
        raw_correlation = correlation.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out = list(message.get("headers", ()))
                if not any(k.lower() == b"x-correlation-id" for k, _v in out):
                    out.append((b"x-correlation-id", raw_correlation))
                    message = {**message, "headers": out}
            await send(message)

        started = time.perf_counter()
        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException as exc:
            error = exc
            raise
        finally:
            seconds = time.perf_counter() - started
            route = _route(scope)
            REQUEST_SECONDS.labels(self.service, method, route, str(status)).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):  # while the span is current: the line has its ids
                access_log.info(
                    "request",
                    extra={"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1e3, 3)},
                )
            if span is not None:
                span[0].update_name(f"{method} {route}")
                failed = error if error is not None else (RuntimeError(f"HTTP {status}") if status >= 500 else None)
                tracing.end_span(span, failed, **{"http.route": route, "http.response.status_code": status})
            observe.correlation_id.reset(reset)


class BusObserver:
    """The bus's observer (`scte.bus.observe.Observer`): spans and metrics of publishes and handlers."""

    def publishing(self, source: str, topic: str, event_type: str) -> Any:
        return tracing.start_span(
            f"publish {topic}",
            SpanKind.PRODUCER,
            {
                SERVICE: source,
                "messaging.system": "aws_sns",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "scte.event_type": event_type,
            },
        )

    def published(self, token: Any, envelope: Envelope | None) -> None:
        if envelope is None:
            tracing.end_span(token, RuntimeError("the event was not written"))
            return
        tracing.end_span(token, None, **{"messaging.message.id": envelope.id, CORRELATION: envelope.correlation_id})

    def handling(self, consumer: str, queue: str, envelope: Envelope, message: IncomingMessage, handler: str) -> Any:
        wait = max(0.0, time.time() - message.sent_timestamp_ms / 1000) if message.sent_timestamp_ms else None
        if wait is not None:
            QUEUE_WAIT_SECONDS.labels(consumer, queue).observe(wait)
        reset = observe.correlation_id.set(envelope.correlation_id)
        span = None
        if tracing.enabled():
            attributes: dict[str, Any] = {
                SERVICE: consumer,
                "messaging.system": "aws_sqs",
                "messaging.operation.type": "process",
                "messaging.destination.name": queue,
                "messaging.message.id": envelope.id,
                "scte.event_type": envelope.type,
                "scte.handler": handler,
                "scte.receive_count": message.receive_count,
                CORRELATION: envelope.correlation_id,
            }
            if wait is not None:
                attributes["scte.queue_wait_ms"] = round(wait * 1e3, 3)
            parent = tracing.parent_from(envelope.traceparent, envelope.tracestate)
            span = tracing.start_span(f"handle {envelope.type}", SpanKind.CONSUMER, attributes, parent)
        return (span, reset, time.perf_counter(), consumer, envelope.type, handler, wait, message.receive_count)

    def handled(self, token: Any, error: BaseException | None, duplicate: bool = False) -> None:
        span, reset, started, consumer, event_type, handler, wait, receive_count = token
        outcome = "failed" if error is not None else "duplicate" if duplicate else "processed"
        seconds = time.perf_counter() - started
        HANDLER_SECONDS.labels(consumer, event_type, outcome).observe(seconds)
        if handler_log.isEnabledFor(logging.INFO):  # one line per message handled, with the span's ids
            handler_log.info(
                "handled",
                extra={
                    "event_type": event_type,
                    "handler": handler,
                    "outcome": outcome,
                    "receive_count": receive_count,
                    "duration_ms": round(seconds * 1e3, 3),
                    "queue_wait_ms": None if wait is None else round(wait * 1e3, 3),
                },
            )
        tracing.end_span(span, error, **({"scte.duplicate": True} if duplicate else {}))
        with contextlib.suppress(ValueError):  # reset in another context (cancelled midway): nothing to restore
            observe.correlation_id.reset(reset)


def configure(service: str, settings: Settings) -> None:
    """A process's observability: JSON log lines, spans (when configured), the bus's observer."""
    from scte.kit.logs import configure_logging

    configure_logging(service, settings.log_level)
    tracing.configure(service, settings)
    observe.set_observer(BusObserver())
