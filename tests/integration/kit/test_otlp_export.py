"""Spans leave over OTLP (HTTP/protobuf) only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: a real HTTP
server on loopback receives them, decoded with OpenTelemetry's own protobuf types. Unset (and no span
store), nothing is configured and the SDK is not even imported."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind

from scte.kit import tracing
from scte.kit.settings import Settings


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        Collector.received.append((self.path, self.headers.get("content-type", ""), body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Collector.received = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_spans_go_over_otlp_when_the_endpoint_is_set(
    collector: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector)
    provider = tracing.configure("search", Settings(data_dir=tmp_path))
    assert provider is not None
    try:
        scope = tracing.start_span("handle x.v1", SpanKind.CONSUMER, {"scte.service": "search"})
        tracing.end_span(scope)
        assert provider.force_flush(30_000)
    finally:
        tracing.shutdown()
        tracing.install(None)
    [(path, content_type, body)] = Collector.received
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    names = [span.name for scoped in resource_spans.scope_spans for span in scoped.spans]
    assert (service, names) == ("search", ["handle x.v1"])
    assert not (tmp_path / "traces").exists()  # no span store unless asked for


def test_nothing_is_traced_without_an_endpoint_or_a_store(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from scte.kit import tracing\n"
        "from scte.kit.settings import Settings\n"
        "assert tracing.configure('search', Settings(data_dir=Path(sys.argv[1]))) is None\n"
        "assert not tracing.enabled()\n"
        "assert 'opentelemetry.sdk.trace' not in sys.modules, 'the SDK was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.pop("SCTE_SPAN_STORE", None)
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
