"""Event handlers: activity.recorded and the business events of BUSINESS_EVENT_KINDS become stream
entries, written in batches by the ActivityWriter.

These handlers do not use the bus inbox: on the busiest queue of the system a second row per event
would double the writes, and an entry is its own idempotency record (its id is the activity id, or
`evt:<event id>` for a business event; the batch insert skips ids already stored)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import scte.contracts  # noqa: F401  (registers the catalogue)
from scte.bus.contracts import Event, registry
from scte.bus.envelope import Envelope
from scte.contracts.activity import ActivityRecorded
from scte.contracts.members import MemberSessionsRevoked
from scte.kit.revocation import store_revocation

from .domain import BUSINESS_EVENT_KINDS, ActivityEntry, ActivityKind, entry_for_business_event
from .writer import ActivityWriter

__all__ = ["HANDLERS", "on_activity_recorded", "on_business_event"]

_WHEN_FIELDS = (
    "completed_at",
    "taken_at",
    "started_at",
    "renewed_at",
    "registered_at",
    "awarded_on",
    "renewed_on",
    "granted_on",
    "attended_on",
    "earned_on",
)


def _occurred_at(event: Event, envelope: Envelope) -> datetime:
    for name in _WHEN_FIELDS:
        value = getattr(event, name, None)
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime.combine(value, time(12, 0), tzinfo=UTC)
    return envelope.time


async def on_activity_recorded(event: ActivityRecorded, writer: ActivityWriter) -> None:
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(event.detail.items()))
    entry = ActivityEntry(
        event.activity_id, event.member_id, ActivityKind(event.kind), event.occurred_at, summary, event.path
    )
    await writer.add(entry)


async def on_business_event(event: Event, envelope: Envelope, writer: ActivityWriter) -> None:
    member_id = getattr(event, "member_id", None)
    if not member_id:
        return
    entry = entry_for_business_event(envelope.id, envelope.type, member_id, _occurred_at(event, envelope))
    if entry is not None:
        await writer.add(entry)


HANDLERS: dict[str | type[Event], Any] = {
    ActivityRecorded: on_activity_recorded,
    MemberSessionsRevoked: store_revocation,  # the API refuses revoked sessions (scte.kit.revocation)
    **{event_type: on_business_event for event_type in BUSINESS_EVENT_KINDS if event_type in registry.types()},
}
