"""Companies rules: who works where, who may do what for a company, and the company's rollup.

A rollup is what a company admin watches: how many current employees hold each certification,
how many certifications expire soon (so training can be planned), and what the company spent on
training. Companies computes it from its own read model of certification and commerce events, and
publishes company.rollup_changed only when a figure changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

__all__ = [
    "DEFAULT_EXPIRING_WITHIN_DAYS",
    "INVITATION_VALID_FOR",
    "CertificationView",
    "CompaniesError",
    "CompanyRole",
    "Employment",
    "Invitation",
    "InvitationStatus",
    "Rollup",
    "SpendEntry",
    "can_manage",
    "can_view_reports",
    "certified_headcount",
    "compute_rollup",
    "current_employees",
    "expiring_within",
    "revoke_role",
    "start_employment",
    "training_spend",
]

DEFAULT_EXPIRING_WITHIN_DAYS = 90


class CompaniesError(ValueError):
    """A change the rules refuse."""


@dataclass(frozen=True)
class Employment:
    """A member works for a company over [started_on, ended_on); ended_on None: still there."""

    member_id: str
    company_id: str
    started_on: date
    ended_on: date | None = None

    def __post_init__(self) -> None:
        if self.ended_on is not None and self.ended_on < self.started_on:
            raise CompaniesError("an employment cannot end before it starts")

    def is_current(self, on: date) -> bool:
        return self.started_on <= on and (self.ended_on is None or on < self.ended_on)


def current_employees(links: Iterable[Employment], company_id: str, on: date) -> set[str]:
    return {link.member_id for link in links if link.company_id == company_id and link.is_current(on)}


def start_employment(links: Iterable[Employment], started_on: date) -> Employment | None:
    """Where a new employment of one member at one company starting `started_on` goes, given their
    earlier ones (none current): None for a new period, or the earlier period to reopen.

    A member who joins, leaves and joins again the same day left an empty period [d, d) behind; the
    new one starts on the same day (the same key), so that period is reopened instead of a second row
    added (which the key refused: a 500). A new period may not start inside an earlier one."""
    reopen = None
    for link in links:
        if link.ended_on is None:
            raise CompaniesError(f"{link.member_id} already works for {link.company_id}")
        if link.started_on == link.ended_on == started_on:
            reopen = link
        elif link.started_on == started_on or started_on < link.ended_on:
            raise CompaniesError(
                f"an employment from {started_on} overlaps the earlier one "
                f"[{link.started_on}, {link.ended_on}) of {link.member_id} at {link.company_id}"
            )
    return reopen


# --- invitations -----------------------------------------------------------------------------------

INVITATION_VALID_FOR = timedelta(days=14)


class InvitationStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    """Taken back by the company before an answer."""


@dataclass(frozen=True)
class Invitation:
    """A company asks a member to join it. Membership needs the member's consent: nothing of the
    member (e-mail, certifications) reaches the company until they accept."""

    invitation_id: str
    company_id: str
    member_id: str | None
    """The invitee when invited by id (or by an address companies knew at the time)."""
    email: str | None
    """The address invited, lower case, when invited by e-mail."""
    status: InvitationStatus
    expires_at: datetime

    def addressed_to(self, member_id: str, email: str | None) -> bool:
        if self.member_id is not None:
            return self.member_id == member_id
        return email is not None and self.email == email.lower()

    def is_open(self, now: datetime) -> bool:
        return self.status is InvitationStatus.PENDING and now < self.expires_at

    def answer(self, now: datetime) -> None:
        """Refuses an answer to an invitation no longer open (answered, withdrawn, expired)."""
        if self.status is not InvitationStatus.PENDING:
            raise CompaniesError(f"this invitation is {self.status.value} already")
        if now >= self.expires_at:
            raise CompaniesError("this invitation has expired; ask the company for a new one")


# --- roles -----------------------------------------------------------------------------------------


class CompanyRole(StrEnum):
    ADMIN = "admin"
    """Manages employees, roles and purchase orders; sees everything."""
    REPORT_VIEWER = "report_viewer"
    """Sees rollups and reports; changes nothing."""


def can_view_reports(roles: Iterable[CompanyRole]) -> bool:
    return bool({CompanyRole.ADMIN, CompanyRole.REPORT_VIEWER} & set(roles))


def can_manage(roles: Iterable[CompanyRole]) -> bool:
    return CompanyRole.ADMIN in set(roles)


def revoke_role(grants: dict[str, set[CompanyRole]], member_id: str, role: CompanyRole) -> dict[str, set[CompanyRole]]:
    """The grants without `role` for `member_id`. A company keeps at least one admin, or nobody
    could manage it any more."""
    remaining = {member: set(roles) for member, roles in grants.items()}
    remaining.setdefault(member_id, set()).discard(role)
    if role is CompanyRole.ADMIN and not any(CompanyRole.ADMIN in roles for roles in remaining.values()):
        raise CompaniesError("a company keeps at least one admin")
    return {member: roles for member, roles in remaining.items() if roles}


# --- rollups ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificationView:
    """What companies knows of a certification, from certification events."""

    certification_id: str
    member_id: str
    program: str
    expires_on: date | None
    """None for emeritus: held for life."""
    held: bool
    """Awarded or renewed, not expired or lapsed."""


@dataclass(frozen=True)
class SpendEntry:
    """Money the company spent on training (course seats, exam fees, renewal fees): from
    order.paid with the company as buyer."""

    order_id: str
    amount_cents: int
    currency: str
    paid_at: datetime


def certified_headcount(employees: set[str], certs: Iterable[CertificationView]) -> dict[str, int]:
    """Per program, how many current employees hold it (a person counts once per program)."""
    holders: dict[str, set[str]] = {}
    for cert in certs:
        if cert.held and cert.member_id in employees:
            holders.setdefault(cert.program, set()).add(cert.member_id)
    return {program: len(members) for program, members in sorted(holders.items())}


def expiring_within(
    employees: set[str], certs: Iterable[CertificationView], on: date, days: int
) -> list[CertificationView]:
    """Held certifications of current employees that expire in [on, on + days]."""
    horizon = on + timedelta(days=days)
    return sorted(
        (
            c
            for c in certs
            if c.held and c.member_id in employees and c.expires_on is not None and on <= c.expires_on <= horizon
        ),
        key=lambda c: (c.expires_on or on, c.certification_id),
    )


def training_spend(entries: Iterable[SpendEntry], since: datetime, until: datetime, currency: str) -> int:
    """Cents spent in [since, until) in one currency (a company is billed in one)."""
    start, end = since.astimezone(UTC), until.astimezone(UTC)
    return sum(e.amount_cents for e in entries if e.currency == currency and start <= e.paid_at.astimezone(UTC) < end)


@dataclass(frozen=True)
class Rollup:
    company_id: str
    employee_count: int
    certified_headcount: dict[str, int]
    expiring_within_days: int
    expiring_count: int
    training_spend_cents: int
    currency: str

    def differs_from(self, other: Rollup | None) -> bool:
        """Whether publishing is warranted: any figure changed (the time of computing is not one)."""
        return other != self


def compute_rollup(
    company_id: str,
    links: Iterable[Employment],
    certs: Iterable[CertificationView],
    spend: Iterable[SpendEntry],
    on: date,
    *,
    expiring_days: int = DEFAULT_EXPIRING_WITHIN_DAYS,
    currency: str = "USD",
) -> Rollup:
    """The rollup on a day. Training spend is over the calendar year to date (UTC)."""
    employees = current_employees(links, company_id, on)
    cert_list = list(certs)
    year_start = datetime(on.year, 1, 1, tzinfo=UTC)
    tomorrow = datetime(on.year, on.month, on.day, tzinfo=UTC) + timedelta(days=1)
    return Rollup(
        company_id=company_id,
        employee_count=len(employees),
        certified_headcount=certified_headcount(employees, cert_list),
        expiring_within_days=expiring_days,
        expiring_count=len(expiring_within(employees, cert_list, on, expiring_days)),
        training_spend_cents=training_spend(spend, year_start, tomorrow, currency),
        currency=currency,
    )
