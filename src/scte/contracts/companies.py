"""Events published by the companies service: rollups that company admins and reports read."""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from scte.bus.contracts import Event, event

from ._types import Cents, Currency, Id, ProgramCode, UtcDatetime

__all__ = [
    "CompanyEmploymentChanged",
    "CompanyInvitationSent",
    "CompanyRole",
    "CompanyRolesChanged",
    "CompanyRollupChanged",
]

CompanyRole = Literal["admin", "report_viewer"]


@event
class CompanyRollupChanged(Event):
    """A company's rollup changed: certified headcount per program, certifications expiring soon,
    training spend. Published only when a figure changed, not on every input event."""

    event_type: ClassVar[str] = "company.rollup_changed.v1"

    company_id: Id
    as_of: UtcDatetime
    employee_count: Annotated[int, Field(ge=0)]
    certified_headcount: dict[ProgramCode, Annotated[int, Field(ge=0)]]
    expiring_within_days: Annotated[int, Field(ge=1)]
    expiring_count: Annotated[int, Field(ge=0)]
    training_spend_cents: Cents
    currency: Currency

    def subject(self) -> str | None:
        return self.company_id


@event
class CompanyEmploymentChanged(Event):
    """A member started or stopped working for a company. Services that address a member's company
    (notifications to company admins) keep their own employment read model from this."""

    event_type: ClassVar[str] = "company.employment_changed.v1"

    company_id: Id
    member_id: Id
    employed: bool
    started_on: date
    ended_on: date | None = None
    changed_at: UtcDatetime

    def subject(self) -> str | None:
        return self.company_id


@event
class CompanyRolesChanged(Event):
    """A member's roles in a company changed; `roles` is the complete new set (empty: none left)."""

    event_type: ClassVar[str] = "company.roles_changed.v1"

    company_id: Id
    member_id: Id
    roles: tuple[CompanyRole, ...]
    changed_at: UtcDatetime

    def subject(self) -> str | None:
        return self.company_id


@event
class CompanyInvitationSent(Event):
    """A company's admin invited a member to join it: the member hears of it (notifications mails
    them) and accepts or refuses; only an acceptance makes them an employee the company can see.
    `member_id` is the invitee when companies knows them (an invitation by an address no member has
    yet names nobody and sends nothing; it waits for a member registering with that address)."""

    event_type: ClassVar[str] = "company.invitation_sent.v1"

    invitation_id: Id
    company_id: Id
    company_name: Annotated[str, Field(min_length=1, max_length=200)]
    member_id: Id | None = None
    invited_by: Id
    expires_at: UtcDatetime
    sent_at: UtcDatetime

    def subject(self) -> str | None:
        return self.company_id
