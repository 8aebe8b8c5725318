"""Events published by the certification service: the life cycle of a certification and the
recertification-unit (RU) ledger.

Every subject is the member id, not the certification id: a member's units count toward all their
certifications, and members derive one set of designations from all of them, so consumers must
see one member's certification events in order.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from scte.bus.contracts import Event, event

from ._types import Id, ProgramCode, Units

__all__ = [
    "CertificationAwarded",
    "CertificationEmeritusGranted",
    "CertificationExpired",
    "CertificationLapsed",
    "CertificationRenewed",
    "RecertRequirementsMet",
    "RecertUnitsCredited",
    "RecertWindowOpened",
    "RenewalBasis",
    "UnitSource",
]

UnitSource = Literal["course_completion", "membership_year", "event_attendance"]
"""Where recertification units come from."""

RenewalBasis = Literal["units", "exam"]
"""A certification is renewed by enough units in the cycle, or by passing the exam again."""


@event
class CertificationAwarded(Event):
    """A member earned a certification (passed its exam); it is valid three years."""

    event_type: ClassVar[str] = "certification.awarded.v1"

    certification_id: Id
    member_id: Id
    program: ProgramCode
    program_name: str
    awarded_on: date
    expires_on: date
    attempt_id: Id | None = None

    def subject(self) -> str | None:
        return self.member_id


@event
class CertificationRenewed(Event):
    """A certification entered a new three-year cycle, counted from the previous expiry."""

    event_type: ClassVar[str] = "certification.renewed.v1"

    certification_id: Id
    member_id: Id
    program: ProgramCode
    renewed_on: date
    cycle_start: date
    expires_on: date
    basis: RenewalBasis
    units_earned: Units

    def subject(self) -> str | None:
        return self.member_id


@event
class RecertUnitsCredited(Event):
    """Units were added to a member's ledger. `credit_id` is the idempotency key of the credit."""

    event_type: ClassVar[str] = "recert.units_credited.v1"

    credit_id: Id
    member_id: Id
    source: UnitSource
    units: Units
    earned_on: date
    reference: Id

    def subject(self) -> str | None:
        return self.member_id


@event
class RecertRequirementsMet(Event):
    """A certification's current cycle now has enough units: it can be renewed once the window opens."""

    event_type: ClassVar[str] = "recert.requirements_met.v1"

    certification_id: Id
    member_id: Id
    program: ProgramCode
    units_earned: Units
    units_required: Units
    renewal_opens_on: date

    def subject(self) -> str | None:
        return self.member_id


@event
class RecertWindowOpened(Event):
    """Six months before expiry: the certification may be renewed from today until `lapses_on`."""

    event_type: ClassVar[str] = "recert.window_opened.v1"

    certification_id: Id
    member_id: Id
    program: ProgramCode
    opened_on: date
    expires_on: date
    lapses_on: date
    units_earned: Units
    units_required: Units

    def subject(self) -> str | None:
        return self.member_id


@event
class CertificationExpired(Event):
    """The cycle ended without renewal. Still renewable until `lapses_on`, but no longer held."""

    event_type: ClassVar[str] = "certification.expired.v1"

    certification_id: Id
    member_id: Id
    program: ProgramCode
    expired_on: date
    lapses_on: date

    def subject(self) -> str | None:
        return self.member_id


@event
class CertificationLapsed(Event):
    """Twelve months after expiry without renewal: only passing the exam again restores it."""

    event_type: ClassVar[str] = "certification.lapsed.v1"

    certification_id: Id
    member_id: Id
    program: ProgramCode
    lapsed_on: date

    def subject(self) -> str | None:
        return self.member_id


@event
class CertificationEmeritusGranted(Event):
    """21 years of continuous certification: held for life, no more units or renewals."""

    event_type: ClassVar[str] = "certification.emeritus_granted.v1"

    certification_id: Id
    member_id: Id
    program: ProgramCode
    originally_awarded_on: date
    granted_on: date

    def subject(self) -> str | None:
        return self.member_id
