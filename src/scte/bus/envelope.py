"""The envelope: CloudEvents 1.0 attributes, correlation, causation and W3C trace context, carried as
SQS/SNS message attributes around the event's JSON body.

CloudEvents has no SQS binding, so this module defines one (docs/bus.md has the table). SQS and SNS
allow 10 message attributes; the envelope uses at most 10, and fewer in the common case:

| attribute            | CloudEvents / W3C      | when                                                  |
|----------------------|------------------------|-------------------------------------------------------|
| ce-id                | id                     | always                                                |
| ce-type              | type                   | always (`certification.awarded.v1`; filter policies)  |
| ce-source            | source                 | always (the publishing service)                       |
| ce-specversion       | specversion            | always (`1.0`)                                        |
| ce-time              | time                   | always (RFC 3339, UTC)                                |
| correlation-id       | (extension)            | always                                                |
| ce-subject           | subject                | when the event has a subject                          |
| causation-id         | (extension)            | when the event was caused by another                  |
| traceparent          | W3C traceparent        | when there is trace context                           |
| tracestate           | W3C tracestate         | when non-empty and the budget allows, else folded     |
| ce-datacontenttype   | datacontenttype        | only when not `application/json` (the default)        |

When all of them would exceed the budget, `tracestate` is folded into the `traceparent` attribute
after a space (`00-...-01 vendor=value`): a traceparent has no spaces, so the split is unambiguous.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import ValidationError

from scte.bus.contracts import DecodeError, Event, EventRegistry, UnknownEventType
from scte.bus.transport import IncomingMessage, OutgoingMessage
from scte.ids import new_uuid7

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "MAX_ATTRIBUTES",
    "DecodeError",
    "Envelope",
    "SchemaMismatch",
    "UndecodableMessage",
    "UnknownEventType",
    "decode",
    "encode",
]

MAX_ATTRIBUTES = 10
DEFAULT_CONTENT_TYPE = "application/json"
SPEC_VERSION = "1.0"

ID = "ce-id"
TYPE = "ce-type"
SOURCE = "ce-source"
SPECVERSION = "ce-specversion"
TIME = "ce-time"
SUBJECT = "ce-subject"
DATACONTENTTYPE = "ce-datacontenttype"
CORRELATION_ID = "correlation-id"
CAUSATION_ID = "causation-id"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

ENVELOPE_ATTRIBUTES = (
    ID,
    TYPE,
    SOURCE,
    SPECVERSION,
    TIME,
    SUBJECT,
    DATACONTENTTYPE,
    CORRELATION_ID,
    CAUSATION_ID,
    TRACEPARENT,
    TRACESTATE,
)


class UndecodableMessage(DecodeError):
    """Attributes missing or invalid, or a body that is not a JSON object."""


class SchemaMismatch(DecodeError):
    """The body is JSON but does not validate against the event's model."""

    def __init__(self, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.errors = errors or []


@dataclass(frozen=True, init=False)
class Envelope:
    """What a message says about its event, besides the event itself."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str | None
    correlation_id: str
    causation_id: str | None
    traceparent: str | None
    tracestate: str | None
    datacontenttype: str = DEFAULT_CONTENT_TYPE
    specversion: str = SPEC_VERSION

    def __init__(
        self,
        id: str,
        type: str,
        source: str,
        time: datetime,
        subject: str | None,
        correlation_id: str,
        causation_id: str | None,
        traceparent: str | None,
        tracestate: str | None,
        datacontenttype: str = DEFAULT_CONTENT_TYPE,
        specversion: str = SPEC_VERSION,
    ) -> None:
        # The dataclass's own __init__ (same parameters, pinned by a test), in one step: a frozen
        # dataclass sets each field with its own object.__setattr__ call, 1.3 us of every encode and
        # decode; the instance's __dict__ takes them all at once for 0.4 us.
        self.__dict__.update(
            id=id,
            type=type,
            source=source,
            time=time,
            subject=subject,
            correlation_id=correlation_id,
            causation_id=causation_id,
            traceparent=traceparent,
            tracestate=tracestate,
            datacontenttype=datacontenttype,
            specversion=specversion,
        )

    def attributes(self, *, budget: int = MAX_ATTRIBUTES) -> dict[str, str]:
        """The message attributes, at most `budget` of them (pass fewer to leave room for your own)."""
        attrs = {
            ID: self.id,
            TYPE: self.type,
            SOURCE: self.source,
            SPECVERSION: self.specversion,
            TIME: format_time(self.time),
            CORRELATION_ID: self.correlation_id,
        }
        if self.subject is not None:
            attrs[SUBJECT] = self.subject
        if self.causation_id is not None:
            attrs[CAUSATION_ID] = self.causation_id
        if self.datacontenttype != DEFAULT_CONTENT_TYPE:
            attrs[DATACONTENTTYPE] = self.datacontenttype
        if self.traceparent:
            attrs[TRACEPARENT] = self.traceparent
            if self.tracestate:
                if len(attrs) < budget:
                    attrs[TRACESTATE] = self.tracestate
                else:
                    attrs[TRACEPARENT] = f"{self.traceparent} {self.tracestate}"
        if len(attrs) > budget:
            raise ValueError(f"the envelope needs {len(attrs)} message attributes, more than the budget of {budget}")
        return attrs

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, str], *, fallback_time_ms: int | None = None) -> Envelope:
        """Read an envelope back; raises `UndecodableMessage` naming what is missing or invalid."""
        get = attributes.get
        id, type, source, specversion = get(ID), get(TYPE), get(SOURCE), get(SPECVERSION)
        if not (id and type and source and specversion):
            missing = [name for name in (ID, TYPE, SOURCE, SPECVERSION) if not get(name)]
            raise UndecodableMessage(f"missing message attribute(s): {', '.join(missing)}")
        if specversion != SPEC_VERSION:
            raise UndecodableMessage(f"unsupported CloudEvents specversion {specversion!r} (expected {SPEC_VERSION})")
        raw_time = get(TIME)
        if raw_time:
            try:
                time = parse_time(raw_time)
            except ValueError:
                raise UndecodableMessage(f"invalid {TIME} {raw_time!r}: not an RFC 3339 timestamp") from None
        elif fallback_time_ms is not None:
            time = datetime.fromtimestamp(fallback_time_ms / 1000, UTC)
        else:
            raise UndecodableMessage(f"missing message attribute(s): {TIME}")
        traceparent = get(TRACEPARENT) or None
        tracestate = get(TRACESTATE) or None
        if traceparent and " " in traceparent:
            traceparent, _, folded = traceparent.partition(" ")
            tracestate = tracestate or folded.strip() or None
        return cls(
            id,
            type,
            source,
            time,
            get(SUBJECT) or None,
            get(CORRELATION_ID) or id,
            get(CAUSATION_ID) or None,
            traceparent,
            tracestate,
            get(DATACONTENTTYPE) or DEFAULT_CONTENT_TYPE,
            specversion,
        )


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a `Z`."""
    if value.tzinfo is None:
        raise ValueError("envelope times must be timezone-aware")
    utc = value.astimezone(UTC)
    if utc.year < 1000:
        # strftime's %Y does not pad years before 1000 (glibc); isoformat would. Keep the old text.
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is half the cost of strftime; in UTC it ends in "+00:00", which becomes the "Z".
    return utc.isoformat("T", "microseconds")[:-6] + "Z"


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed.astimezone(UTC)


# Propagators that inject nothing from an empty context: the tracecontext one needs a valid span in
# it and the baggage one some baggage. Exact types only: a subclass may inject what it likes.
_QUIET_WHEN_EMPTY = (TraceContextTextMapPropagator, W3CBaggagePropagator)
_quiet_verdict: tuple[object, bool] = (None, False)  # (the global propagator checked, its verdict)


def _quiet_when_empty(propagator: object) -> bool:
    """Whether the propagator is a composite of only `_QUIET_WHEN_EMPTY` (what opentelemetry
    configures by default, `tracecontext,baggage`, or a subset). Remembered for the last propagator
    seen, so `propagate.set_global_textmap` takes effect at the next call. A composite's list of
    propagators is fixed when it is made (there is no API to change it)."""
    global _quiet_verdict
    checked, verdict = _quiet_verdict
    if checked is propagator:
        return verdict
    inner = getattr(propagator, "_propagators", None) if type(propagator) is CompositePropagator else None
    verdict = inner is not None and all(type(p) in _QUIET_WHEN_EMPTY for p in inner)
    _quiet_verdict = (propagator, verdict)
    return verdict


def _current_trace_context() -> tuple[str | None, str | None]:
    """traceparent/tracestate of the current OpenTelemetry context, via the configured propagator.

    Without a span or baggage the context is empty, and the default propagators would inject nothing:
    then the carrier, the two propagators' lookups and the dict are skipped (a third of the cost of
    the usual untraced publish). Any other propagator, or a non-empty context, is asked as always."""
    propagator = propagate.get_global_textmap()
    if not otel_context.get_current() and _quiet_when_empty(propagator):
        return None, None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT) or None, carrier.get(TRACESTATE) or None


def encode(
    event: Event,
    *,
    source: str,
    correlation_id: str | None = None,
    causation: Envelope | None = None,
    id: str | None = None,
    time: datetime | None = None,
) -> tuple[Envelope, OutgoingMessage]:
    """Wrap an event for the wire.

    With `causation` (the envelope of the message being handled), the correlation id is copied from
    it and the causation id is its id: a whole conversation shares one correlation id. Without
    either, the event starts a conversation and its correlation id is its own id. Trace context comes
    from the current OpenTelemetry context, else from `causation`.

    The message's FIFO group is the event's subject (or its type when it has none) and its
    deduplication id is the event id; transports drop both on standard topics and queues.
    """
    event_id = id or new_uuid7()  # time-ordered: the services' indexes on event ids stay local
    if causation is not None:
        correlation = causation.correlation_id
        causation_id: str | None = causation.id
    else:
        correlation = correlation_id or event_id
        causation_id = None
    traceparent, tracestate = _current_trace_context()
    if traceparent is None and causation is not None:
        traceparent, tracestate = causation.traceparent, causation.tracestate
    subject = event.subject()
    envelope = Envelope(
        id=event_id,
        type=event.event_type,
        source=source,
        time=(time or datetime.now(UTC)).astimezone(UTC),
        subject=subject,
        correlation_id=correlation,
        causation_id=causation_id,
        traceparent=traceparent,
        tracestate=tracestate,
    )
    message = OutgoingMessage(
        body=event.model_dump_json(),
        attributes=envelope.attributes(),
        group_id=subject or event.event_type,
        deduplication_id=event_id,
    )
    return envelope, message


def decode(message: IncomingMessage, registry: EventRegistry) -> tuple[Envelope, Event]:
    """Turn a received message back into its envelope and event, or raise a `DecodeError`."""
    envelope = Envelope.from_attributes(message.attributes, fallback_time_ms=message.sent_timestamp_ms or None)
    if envelope.datacontenttype != DEFAULT_CONTENT_TYPE:  # the usual case needs no parsing
        content_type = envelope.datacontenttype.split(";", 1)[0].strip().lower()
        if content_type != DEFAULT_CONTENT_TYPE and not content_type.endswith("+json"):
            raise UndecodableMessage(f"unsupported {DATACONTENTTYPE} {envelope.datacontenttype!r}")
    cls = registry.resolve(envelope.type)
    body = message.body
    try:
        event = cls.model_validate_json(body)
    except ValidationError as exc:
        _check_object(body)  # not JSON, or not an object: undecodable rather than a schema mismatch
        errors = [dict(e) for e in exc.errors(include_url=False, include_context=False)]
        raise SchemaMismatch(f"body does not match {envelope.type}: {_summary(exc)}", errors) from None
    # Validated, so the body is JSON (Pydantic's parser accepts no document that `json.loads`
    # refuses), and a JSON document that starts with `{` is an object: no second parse to tell. A
    # model whose own validator takes something else (a list) still finds the body undecodable.
    if body[:1] != "{" and body.lstrip(" \t\n\r")[:1] != "{":
        _check_object(body)
    return envelope, event


def _check_object(body: str) -> None:
    """Raise `UndecodableMessage` unless the body is a JSON object."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise UndecodableMessage(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UndecodableMessage(f"body is not a JSON object but {type(document).__name__}")


def _summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        location = ".".join(str(p) for p in error["loc"]) or "(body)"
        parts.append(f"{location}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
