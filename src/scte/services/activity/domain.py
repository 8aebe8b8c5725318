"""Activity rules: what enters a member's activity stream, how the high-volume intake is buffered,
and how long entries are kept.

Activity is the busiest input of the system (every page view), so the service writes in batches:
a buffer is flushed when it is full or its oldest entry has waited long enough, whichever comes
first. Repeated page views of one page by one member within a short time are one entry: a reload is
not activity. Business events (a course completed, a certification awarded) enter the stream too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

__all__ = [
    "BUSINESS_EVENT_KINDS",
    "FLUSH_AFTER",
    "FLUSH_AT_SIZE",
    "PAGE_VIEW_COLLAPSE",
    "RETENTION",
    "ActivityEntry",
    "ActivityKind",
    "collapse_page_views",
    "entry_for_business_event",
    "is_expired",
    "should_flush",
]

FLUSH_AT_SIZE = 500
FLUSH_AFTER = timedelta(seconds=2)
PAGE_VIEW_COLLAPSE = timedelta(seconds=30)
RETENTION = timedelta(days=365)


class ActivityKind(StrEnum):
    SIGN_IN = "sign_in"
    SIGN_OUT = "sign_out"
    PAGE_VIEW = "page_view"
    COURSE_PROGRESS = "course_progress"
    DOWNLOAD = "download"
    SEARCH = "search"
    MILESTONE = "milestone"
    """A business event: a course completed, an exam passed, a certification awarded..."""


@dataclass(frozen=True)
class ActivityEntry:
    activity_id: str
    member_id: str
    kind: ActivityKind
    occurred_at: datetime
    summary: str = ""
    path: str | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone")


BUSINESS_EVENT_KINDS: Mapping[str, str] = {
    "member.registered.v1": "Joined SCTE",
    "membership.started.v1": "Became a member",
    "membership.renewed.v1": "Renewed membership",
    "course.completed.v1": "Completed a course",
    "exam.passed.v1": "Passed an exam",
    "exam.failed.v1": "Took an exam",
    "event.attended.v1": "Attended an event",
    "certification.awarded.v1": "Earned a certification",
    "certification.renewed.v1": "Renewed a certification",
    "certification.emeritus_granted.v1": "Became emeritus",
    "recert.units_credited.v1": "Earned recertification units",
}
"""Business events shown in the stream, with their summary. Others (payments, notices) are not
activity the member did, or are private."""


def entry_for_business_event(
    event_id: str, event_type: str, member_id: str, occurred_at: datetime
) -> ActivityEntry | None:
    """The stream entry for a business event, keyed by the event id so a redelivery adds nothing."""
    summary = BUSINESS_EVENT_KINDS.get(event_type)
    if summary is None:
        return None
    return ActivityEntry(f"evt:{event_id}", member_id, ActivityKind.MILESTONE, occurred_at, summary)


def should_flush(buffered: int, oldest_at: datetime | None, now: datetime) -> bool:
    if buffered == 0 or oldest_at is None:
        return False
    return buffered >= FLUSH_AT_SIZE or now - oldest_at >= FLUSH_AFTER


def collapse_page_views(entries: Iterable[ActivityEntry]) -> list[ActivityEntry]:
    """Entries in time order, a page view dropped when the same member viewed the same path less
    than PAGE_VIEW_COLLAPSE after the last kept view of it."""
    kept: list[ActivityEntry] = []
    last_view: dict[tuple[str, str | None], datetime] = {}
    for entry in sorted(entries, key=lambda e: (e.occurred_at.astimezone(UTC), e.activity_id)):
        if entry.kind is ActivityKind.PAGE_VIEW:
            key = (entry.member_id, entry.path)
            previous = last_view.get(key)
            if previous is not None and entry.occurred_at - previous < PAGE_VIEW_COLLAPSE:
                continue
            last_view[key] = entry.occurred_at
        kept.append(entry)
    return kept


def is_expired(entry: ActivityEntry, now: datetime) -> bool:
    """Entries older than RETENTION are deleted: the stream is recent history, not an archive."""
    return now - entry.occurred_at >= RETENTION
