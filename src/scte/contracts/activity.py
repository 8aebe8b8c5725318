"""Events about member activity (sign-ins, page views, course progress), published by the gateway
and the services where the activity happens, consumed by the activity service. High volume."""

from __future__ import annotations

from typing import ClassVar, Literal

from scte.bus.contracts import Event, event

from ._types import Id, UtcDatetime

__all__ = ["ActivityKind", "ActivityRecorded"]

ActivityKind = Literal["sign_in", "sign_out", "page_view", "course_progress", "download", "search"]


@event
class ActivityRecorded(Event):
    """A member did something worth showing in their activity stream."""

    event_type: ClassVar[str] = "activity.recorded.v1"

    activity_id: Id
    member_id: Id
    kind: ActivityKind
    occurred_at: UtcDatetime
    path: str | None = None
    detail: dict[str, str] = {}

    def subject(self) -> str | None:
        return self.member_id
