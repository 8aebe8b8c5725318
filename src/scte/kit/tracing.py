"""OpenTelemetry spans in a process: the SDK's tracer provider, its exporters, and span helpers.

A process traces when `install()` is given a provider, or `configure()` finds somewhere to send spans:
the install's span store (`SCTE_SPAN_STORE=true`, which `scte up` sets: every process writes to one
SQLite file, `scte.kit.spanstore`, read by the console's trace view) and/or an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT`, OTLP over HTTP/protobuf; the exporter reads the usual `OTEL_*`
variables). Otherwise nothing is traced and the call sites skip spans altogether (`enabled()`).

The SDK is imported only when tracing is configured: a process that does not trace does not pay for it.
Spans come from this module's provider, not the global one, so a test can trace into an in-memory
exporter and stop again (`install(provider)` ... `install(None)`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from scte.kit.settings import Settings

__all__ = [
    "SERVICE_ATTRIBUTE",
    "SpanScope",
    "configure",
    "enabled",
    "end_span",
    "install",
    "provider",
    "start_span",
]

log = logging.getLogger(__name__)

SERVICE_ATTRIBUTE = "scte.service"
"""Every span names its service: several services may share a process (tests), and so a provider."""
CORRELATION_ATTRIBUTE = "scte.correlation_id"

_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_propagator = TraceContextTextMapPropagator()

SpanScope = tuple[Span, object]
"""A started span and the context token that made it current (`end_span` ends and detaches)."""


def enabled() -> bool:
    return _tracer is not None


def provider() -> TracerProvider | None:
    return _provider


def install(new: TracerProvider | None) -> None:
    """Trace into `new` from now on (None: stop tracing)."""
    global _provider, _tracer
    _provider = new
    _tracer = new.get_tracer("scte") if new is not None else None


def configure(service: str, settings: Settings) -> TracerProvider | None:
    """The process's provider with the exporters its environment asks for (see the module docstring);
    None, and no SDK import, when it asks for none."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not settings.span_store and not endpoint:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    made = TracerProvider(resource=Resource.create({"service.name": service}))
    if settings.span_store:
        from scte.kit.spanstore import SpanStoreExporter

        # exported every half second: the console shows an action's spans moments after it
        exporter = cast("SpanExporter", SpanStoreExporter(settings.span_store_path))  # the protocol, no base
        made.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        made.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("%s: exporting spans over OTLP to %s", service, endpoint)
    # Not made the global provider: FastAPI traces its own requests through the global one, and would
    # double every server span (and add one per dependency) next to `scte.kit.observability`'s.
    install(made)
    return made


def shutdown() -> None:
    """Flush and stop the exporters (at the end of the process)."""
    if _provider is not None:
        _provider.shutdown()


def parent_from(traceparent: str | None, tracestate: str | None = None) -> otel_context.Context | None:
    """The context of a W3C traceparent (a message's, a request's), or None."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _propagator.extract(carrier)


def extract(headers: Mapping[str, str]) -> otel_context.Context | None:
    return parent_from(headers.get("traceparent"), headers.get("tracestate"))


def inject(headers: dict[str, str]) -> None:
    """The current span's traceparent (and tracestate) into outgoing headers."""
    _propagator.inject(headers)


def start_span(
    name: str,
    kind: SpanKind,
    attributes: Mapping[str, Any],
    parent: otel_context.Context | None = None,
    start_time: int | None = None,
) -> SpanScope | None:
    """A span made current (None when tracing is off); end it with `end_span` in the same task."""
    tracer = _tracer
    if tracer is None:
        return None
    span = tracer.start_span(name, context=parent, kind=kind, attributes=attributes, start_time=start_time)
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    return span, token


def end_span(scope: SpanScope | None, error: BaseException | None = None, **attributes: Any) -> None:
    if scope is None:
        return
    span, token = scope
    try:
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(key, value)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:300]))
        span.end()
    finally:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception:  # detached in another context (a cancelled task): the span is ended all the same
            log.debug("span context detached elsewhere", exc_info=True)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, or None."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
