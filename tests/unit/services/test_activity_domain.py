"""Activity rules: batching, collapsing reloads, business events in the stream, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scte.services.activity.domain import (
    FLUSH_AFTER,
    FLUSH_AT_SIZE,
    PAGE_VIEW_COLLAPSE,
    RETENTION,
    ActivityEntry,
    ActivityKind,
    collapse_page_views,
    entry_for_business_event,
    is_expired,
    should_flush,
)

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def view(aid: str, at: datetime, path: str = "/courses", member: str = "m-1") -> ActivityEntry:
    return ActivityEntry(aid, member, ActivityKind.PAGE_VIEW, at, path=path)


def test_flush_when_full_or_old_enough() -> None:
    assert not should_flush(0, None, T0)
    assert not should_flush(FLUSH_AT_SIZE - 1, T0, T0 + FLUSH_AFTER - timedelta(microseconds=1))
    assert should_flush(FLUSH_AT_SIZE, T0, T0)
    assert should_flush(1, T0, T0 + FLUSH_AFTER)


def test_a_reload_within_30_seconds_is_one_view() -> None:
    entries = [
        view("a", T0),
        view("b", T0 + PAGE_VIEW_COLLAPSE - timedelta(seconds=1)),  # dropped
        view("c", T0 + PAGE_VIEW_COLLAPSE),  # kept: 30 s after the last kept
        view("d", T0 + timedelta(seconds=1), path="/exams"),  # another page
        view("e", T0 + timedelta(seconds=1), member="m-2"),  # another member
        ActivityEntry("f", "m-1", ActivityKind.SIGN_IN, T0 + timedelta(seconds=2)),
    ]
    assert [e.activity_id for e in collapse_page_views(reversed(entries))] == ["a", "d", "e", "f", "c"]


def test_business_events_enter_the_stream_once() -> None:
    entry = entry_for_business_event("evt-1", "certification.awarded.v1", "m-1", T0)
    assert entry is not None
    assert (entry.activity_id, entry.kind, entry.summary) == (
        "evt:evt-1",
        ActivityKind.MILESTONE,
        "Earned a certification",
    )
    assert entry_for_business_event("evt-2", "order.paid.v1", "m-1", T0) is None


def test_entries_are_kept_a_year() -> None:
    entry = view("a", T0)
    assert not is_expired(entry, T0 + RETENTION - timedelta(seconds=1))
    assert is_expired(entry, T0 + RETENTION)


def test_an_entry_time_needs_a_zone() -> None:
    with pytest.raises(ValueError):
        ActivityEntry("a", "m-1", ActivityKind.SIGN_IN, datetime(2025, 1, 1))
