"""Events published by the members service: accounts, membership terms, member status.

Every event's subject is the member id, so a consumer sees one member's events in order.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from scte.bus.contracts import Event, event

from ._types import Id, UtcDatetime

__all__ = [
    "MemberProfileUpdated",
    "MemberRegistered",
    "MemberStatus",
    "MemberStatusChanged",
    "MembershipLapsed",
    "MembershipRenewed",
    "MembershipStarted",
]

MemberStatus = Literal["prospect", "active", "grace", "lapsed"]
"""A member's standing, from their membership term (see scte.services.members.domain)."""


@event
class MemberRegistered(Event):
    """An account was created. Not yet a paying member: membership starts when dues are paid."""

    event_type: ClassVar[str] = "member.registered.v1"

    member_id: Id
    email: str
    display_name: str
    registered_at: UtcDatetime

    def subject(self) -> str | None:
        return self.member_id


@event
class MemberProfileUpdated(Event):
    """The public part of a profile changed; the directory (search) re-indexes from it."""

    event_type: ClassVar[str] = "member.profile_updated.v1"

    member_id: Id
    display_name: str
    city: str | None = None
    country: str | None = None
    listed_in_directory: bool
    updated_at: UtcDatetime

    def subject(self) -> str | None:
        return self.member_id


@event
class MembershipStarted(Event):
    """A first membership term (or one after a lapse) was paid for and began."""

    event_type: ClassVar[str] = "membership.started.v1"

    member_id: Id
    order_id: Id
    term_start: date
    term_end: date
    started_at: UtcDatetime

    def subject(self) -> str | None:
        return self.member_id


@event
class MembershipRenewed(Event):
    """Dues were paid for another term, which follows the previous one without a gap."""

    event_type: ClassVar[str] = "membership.renewed.v1"

    member_id: Id
    order_id: Id
    term_start: date
    term_end: date
    renewed_at: UtcDatetime

    def subject(self) -> str | None:
        return self.member_id


@event
class MembershipLapsed(Event):
    """The grace period after a term's end passed without dues: the member is no longer active."""

    event_type: ClassVar[str] = "membership.lapsed.v1"

    member_id: Id
    term_end: date
    lapsed_on: date

    def subject(self) -> str | None:
        return self.member_id


@event
class MemberStatusChanged(Event):
    """The member's standing or designations (post-nominals such as "BPI, BDS") changed."""

    event_type: ClassVar[str] = "member.status_changed.v1"

    member_id: Id
    previous_status: MemberStatus | None
    status: MemberStatus
    designations: tuple[str, ...] = ()
    changed_at: UtcDatetime

    def subject(self) -> str | None:
        return self.member_id
