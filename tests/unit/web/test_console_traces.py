"""The trace view's waterfall layout: bars on one time axis, the queue wait before a handler's bar."""

from __future__ import annotations

from scte.kit.spanstore import SpanRow
from scte.web.console_traces import LABEL_WIDTH, WATERFALL_WIDTH, waterfall


def span(name: str, kind: str, start_ms: float, end_ms: float, **attributes: object) -> SpanRow:
    return SpanRow(
        "t" * 32, name, None, name, kind, "svc", int(start_ms * 1e6), int(end_ms * 1e6), False, None, None, attributes
    )


def test_bars_share_one_axis_and_a_handler_shows_its_queue_wait() -> None:
    spans = [
        span("request", "server", 0, 100),
        span("publish", "producer", 10, 11, **{"scte.event_type": "x.v1", "messaging.destination.name": "x"}),
        span(
            "handler",
            "consumer",
            50,
            100,
            **{"scte.handler": "on_x", "scte.event_type": "x.v1", "scte.queue_wait_ms": 25.0},
        ),
    ]
    layout = waterfall(spans)
    assert layout["total_ms"] == 100.0
    request, publish, handler = layout["rows"]
    assert (request["x"], request["width"]) == (LABEL_WIDTH, WATERFALL_WIDTH)  # the whole axis
    assert handler["x"] == LABEL_WIDTH + WATERFALL_WIDTH / 2 and handler["width"] == WATERFALL_WIDTH / 2
    assert handler["wait_width"] == WATERFALL_WIDTH / 4 and handler["wait_x"] == handler["x"] - WATERFALL_WIDTH / 4
    assert publish["width"] >= 1.0 and publish["what"] == "publish x.v1 to x"
    assert handler["what"] == "on_x (x.v1)" and request["what"] == "request"
    assert [r["y"] for r in layout["rows"]] == [0, layout["row_height"], 2 * layout["row_height"]]


def test_no_spans_no_rows() -> None:
    assert waterfall([])["rows"] == []
