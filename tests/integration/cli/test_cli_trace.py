"""`scte trace CORRELATION_ID` over a real span store filled by a real action.

Every service runs as its real runtime on one in-process broker behind the real gateway app (the span
test's machinery, `tests.integration.kit.test_spans_across_services`), and their spans go to the
install's span store (`<data>/traces/spans.sqlite`) through the same exporter `scte up` uses. A person
registers through the gateway; `scte trace` with the correlation id the gateway answered prints each hop
(the gateway's request, members' publish to its topic, the handlers of notifications, search and
activity from their queues) with start offsets, durations and the total, and leaves the store as it
was (read-only). A malformed id, an unknown one and a missing store are refused with a sentence.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.integration.kit.test_spans_across_services import PASSWORD
from tests.integration.kit.test_spans_across_services import platform as platform  # the fixture
from typer.testing import CliRunner

from scte.bus import observe
from scte.bus.topology import Topology
from scte.cli import app
from scte.kit import tracing
from scte.kit.auth import TokenIssuer
from scte.kit.observability import BusObserver
from scte.kit.spanstore import SpanStore, SpanStoreExporter
from scte.web.console_traces import span_store_path

pytestmark = pytest.mark.timeout(300)
DOWNSTREAM = {"notifications", "search", "activity"}
"""The queues subscribed to member.registered.v1."""


@pytest.fixture
def spans(tmp_path: Path) -> Iterator[InMemorySpanExporter]:
    """The span test's provider, also writing to the install's span store (as `scte up`'s processes do)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(SimpleSpanProcessor(SpanStoreExporter(span_store_path(tmp_path))))  # type: ignore[arg-type]
    tracing.install(provider)
    observe.set_observer(BusObserver())
    try:
        yield exporter
    finally:
        observe.set_observer(None)
        tracing.install(None)
        provider.shutdown()


def scte(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_scte_trace_prints_every_hop_of_a_registration(
    platform: tuple[httpx.AsyncClient, TokenIssuer, Topology], tmp_path: Path
) -> None:
    gateway, _, _ = platform
    created = await gateway.post(
        "/api/members/members", json={"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada"}
    )
    assert created.status_code == 201, created.text
    correlation = created.headers["x-correlation-id"]
    data = str(tmp_path)

    deadline = asyncio.get_running_loop().time() + 90
    while True:  # the handlers run on the broker's consumers: poll until each has its span stored
        code, out, err = await asyncio.to_thread(scte, "trace", correlation, "--data", data, "--json")
        if code == 0:
            shown = json.loads(out)
            handled = {r["service"] for r in shown["spans"] if r["hop"] == "handled"}
            if handled >= DOWNSTREAM:
                break
        assert asyncio.get_running_loop().time() < deadline, f"never reached {DOWNSTREAM}: {code} {out} {err}"
        await asyncio.sleep(0.3)

    assert shown["correlation_id"] == correlation and shown["failures"] == 0
    rows = shown["spans"]
    first = rows[0]
    assert (first["service"], first["hop"], first["start_ms"]) == ("gateway", "request", 0.0)
    [published] = [r for r in rows if r["hop"] == "published" and r["service"] == "members"]
    assert "member.registered.v1" in published["what"] and published["via"]
    for service in DOWNSTREAM:
        [row] = [r for r in rows if r["hop"] == "handled" and r["service"] == service]
        assert row["via"].startswith(service) and "member.registered.v1" in row["what"]  # its queue, its event
        assert row["start_ms"] >= published["start_ms"] and row["duration_ms"] > 0
        assert row["queue_wait_ms"] is not None and row["result"] == "ok"
    assert all(r["start_ms"] <= shown["total_ms"] for r in rows)
    assert shown["total_ms"] >= max(r["start_ms"] + r["duration_ms"] for r in rows) - 0.01

    # the table: the same hops, the total; and the store was only read
    store = SpanStore(span_store_path(tmp_path))
    before = store.count()
    code, out, err = scte("trace", correlation, "--data", data)
    assert code == 0, err
    assert correlation in out and "total" in out and f"{shown['total_ms']:.1f} ms" in out
    for service in {"gateway", "members", *DOWNSTREAM}:
        assert service in out
    assert "published" in out and "handled" in out
    # a trace id finds the same action
    code, out, err = scte("trace", shown["traces"][0], "--data", data, "--json")
    assert code == 0 and json.loads(out)["correlation_id"] == correlation
    await asyncio.sleep(0.5)
    assert store.count() >= before  # nothing removed (spans of other work may still be arriving)
    store.close()


def test_scte_trace_refuses_bad_and_unknown_ids(tmp_path: Path) -> None:
    code, out, err = scte("trace", "<script>", "--data", str(tmp_path))
    assert code == 2 and "is not a correlation id" in err and not out
    code, out, err = scte("trace", "x" * 65, "--data", str(tmp_path))
    assert code == 2 and "is not a correlation id" in err
    code, _, err = scte("trace", "abc", "--data", str(tmp_path))
    assert code == 1 and "no span store" in err  # no install there
    path = span_store_path(tmp_path)
    SpanStore(path).write([])  # nothing written: still no file
    store = SpanStore(path)
    store.count()  # creates the file and its table
    store.close()
    for unknown in ("6f1c2d3e-0000-4000-8000-000000000000", "0" * 32):
        code, out, err = scte("trace", unknown, "--data", str(tmp_path))
        assert code == 1 and "no stored trace has the id" in err and not out
    # read-only: a store that is not a span store is an error with the reason, and is left as it was
    path.write_bytes(b"not sqlite at all " * 10)
    code, _, err = scte("trace", "abc", "--data", str(tmp_path))
    assert code == 1 and "cannot read the span store" in err
    assert path.read_bytes() == b"not sqlite at all " * 10
