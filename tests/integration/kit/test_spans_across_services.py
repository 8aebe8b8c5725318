"""One exam pass through the gateway is one trace reaching every downstream handler.

Every service of the platform runs as its real runtime (API, consumer, relay, scheduler) on one
in-process broker, behind the real gateway app (its httpx clients routed to each service's app); spans
go to the OpenTelemetry SDK's in-memory exporter. The exam system records a passing attempt through
the gateway; the trace of that request must hold the gateway's span, learning's, the publish of the
exam pass, and for every event published in the trace, a handler span in every queue the topology
subscribes to it: certification, then the award's consumers (notifications, search, companies, reports,
activity, members...), whatever the topology says today.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from scte.bus import observe
from scte.bus.topology import Topology
from scte.bus.transports.inprocess import InProcessTransport
from scte.kit import tracing
from scte.kit.auth import TokenIssuer
from scte.kit.clock import FixedClock
from scte.kit.observability import BusObserver
from scte.kit.testing import bearer, issuer
from scte.kit.testing import test_settings as make_settings
from scte.platform import SERVICES, TOPICS, service_module
from scte.queue.engine import Engine, EngineConfig
from scte.web.gateway import create_gateway

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
PASSWORD = "correct horse battery staple 42"

pytestmark = pytest.mark.timeout(300)


class Routed(httpx.AsyncBaseTransport):
    """The gateway's clients to each service's ASGI app, by host name (http://<service>)."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.transports = {name: httpx.ASGITransport(app=app) for name, app in apps.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.transports[request.url.host].handle_async_request(request)


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
        provider.shutdown()


@pytest.fixture
async def platform(
    tmp_path: Path, spans: InMemorySpanExporter
) -> AsyncIterator[tuple[httpx.AsyncClient, TokenIssuer, Topology]]:
    modules = {name: service_module(name) for name in SERVICES}
    assert all(modules.values()), modules
    topology = Topology(topics=TOPICS, queues=tuple(m.QUEUE for m in modules.values() if m is not None))
    engine = await Engine(EngineConfig(path=tmp_path / "broker.db")).start()
    transport = InProcessTransport(engine, topology=topology)
    await transport.provision(topology)
    settings = make_settings(tmp_path, provision_on_start=False)
    tokens = issuer(settings)
    clock = FixedClock(datetime.now(UTC))
    try:
        async with AsyncExitStack() as stack:
            apps = {}
            for name, module in modules.items():
                assert module is not None
                if "transport" in inspect.signature(module.build_runtime).parameters:
                    runtime = module.build_runtime(settings, clock=clock, transport=transport)
                else:  # members builds its own parts (its limits): give it the shared broker
                    runtime = module.build_runtime(settings)
                    runtime.transport, runtime._own_transport = transport, False
                await stack.enter_async_context(runtime)
                apps[name] = runtime.app
            gateway = create_gateway({name: f"http://{name}" for name in apps}, transport=Routed(apps))
            async with gateway.router.lifespan_context(gateway):
                client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway")
                async with client:
                    yield client, tokens, topology
    finally:
        await engine.close()


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _missing(trace: list[ReadableSpan], topology: Topology) -> list[str]:
    """For each publish in the trace: the subscribed queues without a handler span of its message."""
    handled = {
        (s.attributes["messaging.destination.name"], s.attributes["messaging.message.id"])
        for s in trace
        if s.kind is SpanKind.CONSUMER and s.attributes
    }
    missing = []
    for span in trace:
        if span.kind is not SpanKind.PRODUCER or not span.attributes:
            continue
        topic, event_type = span.attributes["messaging.destination.name"], span.attributes["scte.event_type"]
        message_id = span.attributes["messaging.message.id"]
        for queue in topology.queues:
            subscribed = any(s.topic == topic and s.accepts(str(event_type)) is not False for s in queue.subscriptions)
            if subscribed and (queue.name, message_id) not in handled:
                missing.append(f"{event_type} -> {queue.name}")
    return missing


async def test_an_exam_pass_through_the_gateway_is_one_trace_reaching_every_downstream_handler(
    platform: tuple[httpx.AsyncClient, TokenIssuer, Topology], spans: InMemorySpanExporter
) -> None:
    gateway, tokens, topology = platform
    created = await gateway.post(
        "/api/members/members", json={"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada"}
    )
    assert created.status_code == 201, created.text
    member_id = created.json()["id"]
    me = bearer(tokens.issue(member_id))
    staff = bearer(tokens.issue("proctor", ("member", "staff")))
    order = await gateway.post(
        "/api/commerce/orders", json={"lines": [{"kind": "exam_fee", "reference": "BPI"}]}, headers=me
    )
    assert order.status_code == 201, order.text
    paid = await gateway.post(f"/api/commerce/orders/{order.json()['order_id']}/pay", json={"card": CARD}, headers=me)
    assert paid.status_code == 200, paid.text

    async def attempt() -> httpx.Response | None:
        r = await gateway.post(
            "/api/learning/exams/BPI/attempts", json={"member_id": member_id, "correct": 45}, headers=staff
        )
        assert r.status_code in (201, 409), r.text  # 409: the fee has not reached learning yet
        return r if r.status_code == 201 else None

    deadline = asyncio.get_running_loop().time() + 60
    passed = None
    while passed is None:
        assert asyncio.get_running_loop().time() < deadline, "the fee never reached learning"
        passed = await attempt()
        if passed is None:
            await asyncio.sleep(0.1)
    assert passed.json()["passed"] is True
    correlation = passed.headers["x-correlation-id"]

    # the gateway's span of that request: the root of the action's trace
    [root] = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.SERVER
        and s.attributes
        and s.attributes.get("scte.service") == "gateway"
        and s.attributes.get("scte.correlation_id") == correlation
    ]
    assert root.parent is None and root.name == "POST /api/learning/{path:path}"
    trace_id = root.context.trace_id

    def the_trace() -> list[ReadableSpan]:
        return [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]

    deadline = asyncio.get_running_loop().time() + 90
    while True:
        trace = the_trace()
        handlers = {s.attributes["scte.service"] for s in trace if s.kind is SpanKind.CONSUMER and s.attributes}
        missing = _missing(trace, topology)
        if "certification" in handlers and not missing:
            break
        assert asyncio.get_running_loop().time() < deadline, f"handlers never reached: {missing} (have {handlers})"
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # anything else the trace causes, then look at all of it
    trace = the_trace()

    # one trace: every span's parent is in it (nothing started a trace of its own along the way)
    ids = {s.context.span_id for s in trace}
    assert all(s.parent is None or s.parent.span_id in ids for s in trace)
    assert [s for s in trace if s.parent is None] == [root]

    # learning answered the gateway; it published the exam pass; certification handled it and awarded
    learning_server = [s for s in trace if s.kind is SpanKind.SERVER and s.attributes["scte.service"] == "learning"]
    assert [s.parent.span_id for s in learning_server if s.parent] == [root.context.span_id]
    publishes = {
        (s.attributes["scte.service"], s.attributes["scte.event_type"]) for s in trace if s.kind is SpanKind.PRODUCER
    }
    assert ("learning", "exam.passed.v1") in publishes
    assert any(service == "certification" and event.startswith("certification.") for service, event in publishes)

    # every published event reached every queue subscribed to it, and the issue's named consumers are among them
    assert _missing(trace, topology) == []
    handlers = {s.attributes["scte.service"] for s in trace if s.kind is SpanKind.CONSUMER}
    assert {"certification", "notifications", "search", "companies", "reports", "activity"} <= handlers, handlers

    # each handler span hangs under the publish of its event, names its handler and the queue wait
    by_id = {s.context.span_id: s for s in trace}
    for span in trace:
        if span.kind is SpanKind.CONSUMER:
            assert span.parent is not None and by_id[span.parent.span_id].kind is SpanKind.PRODUCER
            assert span.attributes["scte.handler"] and span.attributes["scte.queue_wait_ms"] >= 0
            assert span.attributes["scte.correlation_id"] == correlation
