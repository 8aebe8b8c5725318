"""Events published by the members service: accounts, membership terms, member status.

Every event's subject is the member id, so a consumer sees one member's events in order.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from scte.bus.contracts import Event, event

from ._types import Id, UtcDatetime

__all__ = [
    "MemberProfileUpdated",
    "MemberRegistered",
    "MemberSessionsRevoked",
    "MemberStatus",
    "MemberStatusChanged",
    "MembershipLapsed",
    "MembershipRenewed",
    "MembershipStarted",
    "PasswordResetRequested",
    "RevocationReason",
]

MemberStatus = Literal["prospect", "active", "grace", "lapsed"]
"""A member's standing, from their membership term (see scte.services.members.domain)."""

RevocationReason = Literal[
    "signed_out",
    "refresh_token_reused",
    "password_changed",
    "password_reset",
    "company_role_removed",
    "employment_ended",
    "revoked_by_staff",
]
"""Why sessions were revoked (for the audit trail; every reason has the same effect)."""


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


@event
class MemberSessionsRevoked(Event):
    """Sign-in sessions of a member were revoked: every service refuses their access tokens from now
    on, without waiting for the tokens to expire (scte.kit.revocation keeps this in each service).

    `session_id` names one session (a sign-out, a reused refresh token); without it, every session
    of the member whose tokens carry a revocation epoch below `epoch` is revoked (a password change,
    a company role taken away). Epochs only grow, so applying these in any order gives the same
    result."""

    event_type: ClassVar[str] = "member.sessions_revoked.v1"

    member_id: Id
    session_id: Id | None = None
    epoch: Annotated[int, Field(ge=0)]
    reason: RevocationReason
    revoked_at: UtcDatetime

    def subject(self) -> str | None:
        return self.member_id


@event
class PasswordResetRequested(Event):
    """A member asked for a password reset link: the notifications service mails it.

    `reset_url` carries a single-use secret that expires at `expires_at`; only the notifications
    queue subscribes to this event, and the token itself is stored hashed by members."""

    event_type: ClassVar[str] = "member.password_reset_requested.v1"

    member_id: Id
    reset_url: Annotated[str, Field(min_length=1, max_length=2048)]
    expires_at: UtcDatetime
    requested_at: UtcDatetime

    def subject(self) -> str | None:
        return self.member_id
