"""`/metrics` and the JSON log lines of a service, over its real app and runtime; the span store.

/metrics: the install's metrics token or a staff token reads it; no credentials, a wrong token or a
member's token are refused (401, 401, 403), directly and through the gateway. It holds the request and
handler latency histograms, the outbox's backlog and lag, and the consumer's in-flight count.
Logs: one JSON line per request, with the trace id of its span and the correlation id the gateway sent;
a line a route logs carries the same ids. The span store keeps its bound and answers by correlation.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from scte.bus import observe
from scte.kit import tracing
from scte.kit.app import create_app
from scte.kit.auth import TokenIssuer
from scte.kit.logs import JsonFormatter
from scte.kit.metrics_token import ensure_metrics_token, read_metrics_token
from scte.kit.observability import BusObserver
from scte.kit.spanstore import SpanStore, SpanStoreExporter
from scte.kit.testing import api_client, bearer
from scte.kit.testing import test_settings as make_settings
from scte.services.commerce import service as commerce
from scte.web.gateway import create_gateway

router = APIRouter()
said = logging.getLogger("tests.demo")


@router.get("/things/{thing_id}")
async def read(thing_id: str) -> dict[str, str]:
    said.warning("reading %s", thing_id)
    return {"id": thing_id}


@pytest.fixture
def signer() -> TokenIssuer:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return TokenIssuer(Ed25519PrivateKey.generate())


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "metrics-token"
    assert ensure_metrics_token(path) and not ensure_metrics_token(path)  # written once, then kept
    assert path.stat().st_mode & 0o777 == 0o600
    return path


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    observe.set_observer(BusObserver())
    try:
        yield exporter
    finally:
        observe.set_observer(None)
        tracing.install(None)


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the process's JSON handler writes, for the loggers these tests use."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("demo"))
    loggers = [logging.getLogger("scte.access"), said]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def test_who_may_read_the_metrics(tmp_path: Path, signer: TokenIssuer, token_file: Path) -> None:
    app = create_app("demo", [router], verifier=signer.verifier())
    app.state.metrics_token_path = token_file
    token = read_metrics_token(token_file)
    assert token
    async with api_client(app) as client:
        assert (await client.get("/things/t1")).status_code == 200
        refused = await client.get("/metrics")
        assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
        assert (await client.get("/metrics", headers=bearer("not-the-token"))).status_code == 401
        member = await client.get("/metrics", headers=bearer(signer.issue("m1")))
        assert member.status_code == 403 and member.json()["error"] == "forbidden"
        for allowed in (bearer(token), bearer(signer.issue("s1", ("member", "staff")))):
            answer = await client.get("/metrics", headers=allowed)
            assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
        requests = samples(answer.text, "scte_http_request_duration_seconds_count")
        mine = [
            v for labels, v in requests if labels.get("service") == "demo" and labels["route"] == "/things/{thing_id}"
        ]
        assert mine and mine[0] >= 1  # the route's template, never the id in the path
        assert not [labels for labels, _v in requests if "t1" in labels.get("route", "")]

    # through the gateway, which forwards any path: the service still decides
    gateway = create_gateway({"demo": "http://demo"}, transport=httpx.ASGITransport(app=app))
    async with gateway.router.lifespan_context(gateway), api_client(gateway) as client:
        assert (await client.get("/api/demo/metrics")).status_code == 401
        assert (await client.get("/api/demo/metrics", headers=bearer(signer.issue("m1")))).status_code == 403
        assert (await client.get("/api/demo/metrics", headers=bearer(token))).status_code == 200
        assert (await client.get("/metrics")).status_code == 401  # the gateway's own: no token file given


async def test_a_service_reports_outbox_lag_handler_latency_and_in_flight(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    ensure_metrics_token(settings.metrics_token_path)
    token = read_metrics_token(settings.metrics_token_path)
    assert token
    observe.set_observer(BusObserver())
    try:
        async with commerce.build_runtime(settings) as runtime, api_client(runtime) as client:
            answer = await client.get("/metrics", headers=bearer(token))
            assert answer.status_code == 200
            text = answer.text
    finally:
        observe.set_observer(None)
    assert [v for labels, v in samples(text, "scte_outbox_pending") if labels["service"] == "commerce"] == [0.0]
    assert [v for labels, v in samples(text, "scte_outbox_lag_seconds") if labels["service"] == "commerce"] == [0.0]
    in_flight = [(labels["queue"], v) for labels, v in samples(text, "scte_consumer_in_flight")]
    assert ("commerce", 0.0) in in_flight
    assert "scte_handler_duration_seconds" in text and "scte_handler_queue_wait_seconds" in text


async def test_one_json_line_per_request_with_trace_and_correlation_ids(
    spans: InMemorySpanExporter, lines: io.StringIO, signer: TokenIssuer
) -> None:
    app = create_app("demo", [router], verifier=signer.verifier())
    gateway = create_gateway({"demo": "http://demo"}, transport=httpx.ASGITransport(app=app))
    async with gateway.router.lifespan_context(gateway), api_client(gateway) as client:
        answer = await client.get("/api/demo/things/t9", headers={"x-correlation-id": "visitor-chosen"})
        health = await client.get("/api/demo/health")
    assert answer.status_code == 200 and health.status_code == 200
    correlation = answer.headers["x-correlation-id"]
    assert correlation != "visitor-chosen"  # the gateway names the action, not the visitor
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    access = [r for r in records if r["logger"] == "scte.access" and r["correlation_id"] == correlation]
    routes = [r["route"] for r in access]
    assert routes == ["/things/{thing_id}", "/api/demo/{path:path}"]  # the service's line, then the gateway's
    # the service's /health has no line (polled every few seconds); the gateway's call to it has its own
    assert len([r for r in records if r["logger"] == "scte.access"]) == 3
    said_line = next(r for r in records if r["logger"] == "tests.demo")
    assert said_line["message"] == "reading t9" and said_line["level"] == "warning"
    [server] = [
        s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER and s.attributes["scte.service"] == "demo"
    ]
    trace_id = format(server.context.trace_id, "032x")
    for record in [*access, said_line]:
        assert record["trace_id"] == trace_id and record["correlation_id"] == correlation
        assert set(record) >= {"time", "level", "service", "logger", "message"}
    service_line = next(r for r in access if r["span_id"] == format(server.context.span_id, "016x"))
    assert (service_line["route"], service_line["status"], service_line["method"]) == ("/things/{thing_id}", 200, "GET")
    assert service_line["duration_ms"] >= 0


def test_the_span_store_is_bounded_and_finds_an_action_by_its_correlation(tmp_path: Path) -> None:
    path = tmp_path / "traces" / "spans.sqlite"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    store_exporter = SpanStoreExporter(path, max_spans=25)
    provider.add_span_processor(SimpleSpanProcessor(store_exporter))  # type: ignore[arg-type]
    tracer = provider.get_tracer("test")
    for n in range(10):
        attributes = {"scte.service": "gateway", "http.request.method": "POST", "scte.correlation_id": f"c{n}"}
        with tracer.start_as_current_span(f"POST /act/{n}", kind=SpanKind.SERVER, attributes=attributes):
            with tracer.start_as_current_span(
                "handle x", kind=SpanKind.CONSUMER, attributes={"scte.service": "search"}
            ):
                pass
            with tracer.start_as_current_span(
                "handle y", kind=SpanKind.CONSUMER, attributes={"scte.service": "reports"}
            ):
                pass
    store = SpanStore(path)
    assert store.count() == 25  # 30 written, the oldest 5 trimmed
    assert path.stat().st_mode & 0o777 == 0o600
    actions = store.actions(5)
    assert [a.name for a in actions] == [f"POST /act/{n}" for n in (9, 8, 7, 6, 5)]
    assert actions[0].services == ("gateway", "reports", "search") and actions[0].spans == 3
    [trace_id] = store.traces_of("c9")
    assert trace_id == actions[0].trace_id
    assert [s.service for s in store.trace(trace_id)] == ["gateway", "search", "reports"]
    assert store.traces_of("c0") == []  # its root was trimmed with the oldest spans
    # a continuation stored before the action's own request span (which ends last) is not an action either
    with tracer.start_as_current_span(
        "publish early", kind=SpanKind.PRODUCER, attributes={"scte.correlation_id": "c10"}
    ):
        pass
    with tracer.start_as_current_span("POST /act/10", kind=SpanKind.SERVER, attributes={"scte.correlation_id": "c10"}):
        pass
    assert [a.name for a in store.actions(1)] == ["POST /act/10"]
    assert [store.trace(t)[0].name for t in store.traces_of("c10")] == ["POST /act/10", "publish early"]

    # work of action 9 that began a trace of its own (a dispatcher loop's publish): found with the action,
    # after its own trace, and not listed as an action of its own
    with tracer.start_as_current_span(
        "publish notifications",
        kind=SpanKind.PRODUCER,
        attributes={"scte.service": "notifications", "scte.correlation_id": "c9"},
    ):
        pass
    assert [a.name for a in store.actions(3)] == ["POST /act/10", "POST /act/9", "POST /act/8"]
    first, later = store.traces_of("c9")
    assert first == trace_id and [s.name for s in store.trace(later)] == ["publish notifications"]
