"""Events published by the notifications service: the outcome of each delivery."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from scte.bus.contracts import Event, event

from ._types import Id, UtcDatetime

__all__ = ["Channel", "NotificationFailed", "NotificationSent"]

Channel = Literal["email", "sms", "push"]


@event
class NotificationSent(Event):
    """A notification was handed to its channel's provider (SMTP server, SMS or push gateway)."""

    event_type: ClassVar[str] = "notification.sent.v1"

    notification_id: Id
    recipient_id: Id
    channel: Channel
    template: str
    cause_event_type: str
    attempts: Annotated[int, Field(ge=1)]
    sent_at: UtcDatetime

    def subject(self) -> str | None:
        return self.recipient_id


@event
class NotificationFailed(Event):
    """A notification could not be delivered: retries are exhausted or the error is permanent."""

    event_type: ClassVar[str] = "notification.failed.v1"

    notification_id: Id
    recipient_id: Id
    channel: Channel
    template: str
    cause_event_type: str
    attempts: Annotated[int, Field(ge=1)]
    error: str
    permanent: bool
    failed_at: UtcDatetime

    def subject(self) -> str | None:
        return self.recipient_id
