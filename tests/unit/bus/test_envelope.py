"""The envelope: encode/decode round trips, the attribute mapping, and every DecodeError."""

from __future__ import annotations

import dataclasses
import inspect
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from opentelemetry import baggage, context, propagate, trace
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import model_validator

from scte.bus.contracts import DecodeError, Event, EventRegistry, UnknownEventType
from scte.bus.envelope import (
    MAX_ATTRIBUTES,
    Envelope,
    SchemaMismatch,
    UndecodableMessage,
    decode,
    encode,
)
from scte.bus.transport import IncomingMessage, OutgoingMessage

reg = EventRegistry()


@reg.register
class CertificationAwarded(Event):
    event_type: ClassVar[str] = "certification.awarded.v1"
    member_id: str
    program: str
    awarded_on: datetime | None = None

    def subject(self) -> str | None:
        return self.member_id


@reg.register
class ReportReady(Event):
    event_type: ClassVar[str] = "report.ready.v1"
    report: str


def received(message: OutgoingMessage, **changes: object) -> IncomingMessage:
    values: dict[str, object] = {
        "queue": "q",
        "message_id": "mid",
        "receipt": "r",
        "body": message.body,
        "attributes": dict(message.attributes),
        "receive_count": 1,
        "sent_timestamp_ms": 1_700_000_000_000,
    }
    values.update(changes)
    return IncomingMessage(**values)  # type: ignore[arg-type]


def test_round_trip() -> None:
    event = CertificationAwarded(member_id="m1", program="BPI", awarded_on=datetime(2026, 1, 2, tzinfo=UTC))
    envelope, message = encode(event, source="certification")
    assert json.loads(message.body)["member_id"] == "m1"
    assert message.group_id == "m1"
    assert message.deduplication_id == envelope.id
    got_envelope, got = decode(received(message), reg)
    assert got == event
    assert got_envelope == envelope
    assert envelope.type == "certification.awarded.v1"
    assert envelope.subject == "m1"
    assert envelope.correlation_id == envelope.id  # starts a conversation
    assert envelope.causation_id is None
    assert envelope.time.tzinfo is not None


def test_attribute_mapping() -> None:
    when = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=2)))
    envelope, message = encode(
        CertificationAwarded(member_id="m1", program="BPI"), source="certification", id="e-1", time=when
    )
    assert dict(message.attributes) == {
        "ce-id": "e-1",
        "ce-type": "certification.awarded.v1",
        "ce-source": "certification",
        "ce-specversion": "1.0",
        "ce-time": "2026-03-04T03:06:07.890123Z",
        "ce-subject": "m1",
        "correlation-id": "e-1",
    }
    assert envelope.time == when


def test_no_subject_groups_by_type() -> None:
    envelope, message = encode(ReportReady(report="r"), source="reports")
    assert envelope.subject is None
    assert "ce-subject" not in message.attributes
    assert message.group_id == "report.ready.v1"


def test_causation_carries_correlation_and_trace() -> None:
    first, _ = encode(ReportReady(report="a"), source="a", correlation_id="conv-1")
    assert first.correlation_id == "conv-1"
    parent = Envelope(
        id="cause",
        type="x.y.v1",
        source="s",
        time=datetime.now(UTC),
        subject=None,
        correlation_id="conv-9",
        causation_id=None,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate="rojo=00f067aa0ba902b7",
    )
    envelope, message = encode(ReportReady(report="b"), source="b", causation=parent, correlation_id="ignored")
    assert envelope.correlation_id == "conv-9"
    assert envelope.causation_id == "cause"
    assert envelope.traceparent == parent.traceparent
    assert message.attributes["causation-id"] == "cause"
    assert message.attributes["tracestate"] == "rojo=00f067aa0ba902b7"


def test_trace_context_from_opentelemetry() -> None:
    span_context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("congo", "t61rcWkgMzE")]),
    )
    token = context.attach(trace.set_span_in_context(NonRecordingSpan(span_context)))
    try:
        parent = Envelope(
            "c", "x.y.v1", "s", datetime.now(UTC), None, "k", None, "00-" + "1" * 32 + "-" + "2" * 16 + "-01", None
        )
        envelope, _ = encode(ReportReady(report="r"), source="s", causation=parent)
    finally:
        context.detach(token)
    assert envelope.traceparent == "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
    assert envelope.tracestate == "congo=t61rcWkgMzE"
    outside, _ = encode(ReportReady(report="r"), source="s")
    assert outside.traceparent is None


def full_envelope(**changes: object) -> Envelope:
    values: dict[str, object] = {
        "id": "e",
        "type": "report.ready.v1",
        "source": "s",
        "time": datetime(2026, 1, 1, tzinfo=UTC),
        "subject": "m",
        "correlation_id": "c",
        "causation_id": "k",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "a=1,b=2",
    }
    values.update(changes)
    return Envelope(**values)  # type: ignore[arg-type]


def test_all_attributes_fit_the_budget() -> None:
    attrs = full_envelope().attributes()
    assert len(attrs) == MAX_ATTRIBUTES
    assert attrs["tracestate"] == "a=1,b=2"


def test_tracestate_folds_into_traceparent_when_over_budget() -> None:
    envelope = full_envelope(datacontenttype="application/cloudevents+json")
    attrs = envelope.attributes()
    assert len(attrs) == MAX_ATTRIBUTES
    assert "tracestate" not in attrs
    assert attrs["traceparent"].endswith(" a=1,b=2")
    assert Envelope.from_attributes(attrs) == envelope
    # Leaving room for the caller's own attributes folds too.
    assert len(full_envelope().attributes(budget=9)) == 9
    with pytest.raises(ValueError, match="budget"):
        full_envelope().attributes(budget=6)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        full_envelope(time=datetime(2026, 1, 1)).attributes()


# -- decode errors ------------------------------------------------------------------------------------------


def good() -> OutgoingMessage:
    return encode(CertificationAwarded(member_id="m1", program="BPI"), source="s")[1]


@pytest.mark.parametrize("missing", ["ce-id", "ce-type", "ce-source", "ce-specversion"])
def test_missing_required_attribute(missing: str) -> None:
    message = good()
    attrs = {k: v for k, v in message.attributes.items() if k != missing}
    with pytest.raises(UndecodableMessage, match=missing) as info:
        decode(received(message, attributes=attrs), reg)
    assert isinstance(info.value, DecodeError)


def test_missing_time_falls_back_to_sent_timestamp_but_not_to_nothing() -> None:
    message = good()
    attrs = {k: v for k, v in message.attributes.items() if k not in ("ce-time", "correlation-id")}
    envelope, _ = decode(received(message, attributes=attrs), reg)
    assert envelope.time == datetime.fromtimestamp(1_700_000_000, UTC)
    assert envelope.correlation_id == envelope.id
    with pytest.raises(UndecodableMessage, match="ce-time"):
        decode(received(message, attributes=attrs, sent_timestamp_ms=0), reg)


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("ce-time", "yesterday", "RFC 3339"),
        ("ce-time", "2026-01-01T00:00:00", "RFC 3339"),
        ("ce-specversion", "0.3", "specversion"),
        ("ce-datacontenttype", "application/xml", "datacontenttype"),
    ],
)
def test_invalid_attribute(name: str, value: str, match: str) -> None:
    message = good()
    with pytest.raises(UndecodableMessage, match=match):
        decode(received(message, attributes={**message.attributes, name: value}), reg)


def test_unknown_event_type() -> None:
    message = good()
    with pytest.raises(UnknownEventType) as info:
        decode(received(message, attributes={**message.attributes, "ce-type": "member.vanished.v1"}), reg)
    assert info.value.event_type == "member.vanished.v1"
    assert isinstance(info.value, DecodeError)


@pytest.mark.parametrize("body", ["not json", "{", "[1, 2]", '"text"', ""])
def test_body_not_a_json_object(body: str) -> None:
    with pytest.raises(UndecodableMessage, match="JSON"):
        decode(received(good(), body=body), reg)


@pytest.mark.parametrize(
    "body",
    [
        '{"member_id": "m1"}',
        '{"member_id": "m1", "program": "BPI", "unknown": 1}',
        '{"member_id": 5, "program": "BPI"}',
    ],
)
def test_schema_mismatch(body: str) -> None:
    with pytest.raises(SchemaMismatch) as info:
        decode(received(good(), body=body), reg)
    assert info.value.errors
    assert "certification.awarded.v1" in info.value.reason


def test_json_compatible_content_types_decode() -> None:
    message = good()
    for content_type in ("application/json; charset=utf-8", "application/cloudevents+json"):
        envelope, _ = decode(
            received(message, attributes={**message.attributes, "ce-datacontenttype": content_type}), reg
        )
        assert envelope.datacontenttype == content_type


# -- what the fast paths must keep ---------------------------------------------------------------------------


def test_ids_are_time_ordered_uuid7_strings() -> None:
    ids = [encode(ReportReady(report="r"), source="s")[0].id for _ in range(2000)]
    assert len(set(ids)) == 2000
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == value
    times = [uuid.UUID(value).int >> 80 for value in ids]
    assert times == sorted(times)  # made one after another: never an earlier millisecond


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC),
        datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),  # no microseconds: still six digits
        datetime(2026, 1, 1, 0, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),  # the day before in UTC
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-11))),
        datetime(999, 5, 6, 7, 8, 9, 10, tzinfo=UTC),  # strftime does not pad the year; neither may we
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_time_format(when: datetime) -> None:
    _, message = encode(ReportReady(report="r"), source="s", time=when)
    assert message.attributes["ce-time"] == when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_envelope_init_is_the_dataclass_init() -> None:
    parameters = list(inspect.signature(Envelope).parameters.values())
    assert [(p.name, p.default) for p in parameters] == [
        (f.name, inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
        for f in dataclasses.fields(Envelope)
    ]
    envelope = full_envelope()
    assert dataclasses.replace(envelope, id="other").id == "other"
    assert dataclasses.asdict(envelope)["tracestate"] == "a=1,b=2"
    assert hash(envelope) == hash(full_envelope())
    with pytest.raises(dataclasses.FrozenInstanceError):
        envelope.id = "changed"  # type: ignore[misc]


class _Fixed(TextMapPropagator):
    """Injects the same trace context whatever the context."""

    def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
        return context

    def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
        carrier["traceparent"] = "00-" + "3" * 32 + "-" + "4" * 16 + "-01"
        carrier["tracestate"] = "fixed=1"

    @property
    def fields(self) -> set[str]:
        return {"traceparent", "tracestate"}


def test_a_propagator_set_later_takes_effect() -> None:
    assert encode(ReportReady(report="r"), source="s")[0].traceparent is None  # the default, remembered
    default = propagate.get_global_textmap()
    for replacement in (_Fixed(), CompositePropagator([TraceContextTextMapPropagator(), _Fixed()])):
        propagate.set_global_textmap(replacement)
        try:
            envelope, _ = encode(ReportReady(report="r"), source="s")
        finally:
            propagate.set_global_textmap(default)
        assert envelope.traceparent == "00-" + "3" * 32 + "-" + "4" * 16 + "-01"
        assert envelope.tracestate == "fixed=1"
    assert encode(ReportReady(report="r"), source="s")[0].traceparent is None


def test_baggage_alone_is_no_trace_context() -> None:
    token = context.attach(baggage.set_baggage("member", "m1"))
    try:
        envelope, message = encode(ReportReady(report="r"), source="s")
    finally:
        context.detach(token)
    assert envelope.traceparent is None
    assert "baggage" not in message.attributes


def test_body_with_leading_whitespace_decodes() -> None:
    message = good()
    _, event = decode(received(message, body="\n  " + message.body), reg)
    assert event == decode(received(message), reg)[1]


class _Listed(Event):
    """A model that also accepts its fields as a JSON list (a validator of its own)."""

    event_type: ClassVar[str] = "report.listed.v1"
    report: str

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        return {"report": value[0]} if isinstance(value, list) else value


def test_a_body_must_be_an_object_even_when_the_model_takes_more() -> None:
    listed = EventRegistry()
    listed.register(_Listed)
    message = encode(_Listed(report="r"), source="s")[1]
    assert decode(received(message), listed)[1] == _Listed(report="r")
    with pytest.raises(UndecodableMessage, match="not a JSON object but list"):
        decode(received(message, body=' ["r"]'), listed)
