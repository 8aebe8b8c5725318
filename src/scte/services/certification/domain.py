"""Certification rules: SCTE's programs, the life cycle of a certification, the recertification-unit
(RU) ledger and renewals.

The rules, as SCTE states them:
- a certification is valid for three years from its award;
- it can be renewed from six months before its expiry until twelve months after it; after that it
  has lapsed, and only passing the exam again certifies the member (a new certification);
- renewal needs 12 RUs earned during the three-year cycle (21 for DVEP, IPEP and BCE), or passing
  the exam again; the new cycle runs three years from the previous expiry, not from the renewal day,
  so renewing early costs nothing and renewing late gains nothing;
- RUs come from course completions (the course's unit value), SCTE events attended, and active
  membership (1 RU per year);
- after 21 years of continuous certification (never lapsed) a certification becomes emeritus: held
  for life without further RUs.

Every period is half-open: it includes its first day and excludes its last. A certification awarded
on 2024-03-15 expires on 2027-03-15, meaning it is valid through 2027-03-14. Month arithmetic clamps
to the month's end: one awarded on a 29 February expires on 28 February three years later.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

__all__ = [
    "EMERITUS_YEARS",
    "LAPSE_MONTHS_AFTER_EXPIRY",
    "PROGRAMS",
    "RENEWAL_WINDOW_MONTHS_BEFORE_EXPIRY",
    "UNITS_PER_MEMBERSHIP_YEAR",
    "VALIDITY_YEARS",
    "Certification",
    "CertificationError",
    "CertificationStatus",
    "ExamEffect",
    "Milestone",
    "MilestoneKind",
    "Program",
    "ProgramInfo",
    "RenewalBasis",
    "RenewalCheck",
    "UnitCredit",
    "UnitLedger",
    "UnitSource",
    "add_months",
    "award",
    "can_renew",
    "check_renewal",
    "course_credit",
    "effect_of_exam_pass",
    "emeritus_eligible_on",
    "event_credit",
    "grant_emeritus",
    "held_programs",
    "is_emeritus_due",
    "lapses_on",
    "membership_credits",
    "milestones",
    "renew",
    "renewal_window_opens_on",
    "requirements_just_met",
    "status_at",
    "units_required",
    "units_still_needed",
]

VALIDITY_YEARS = 3
RENEWAL_WINDOW_MONTHS_BEFORE_EXPIRY = 6
LAPSE_MONTHS_AFTER_EXPIRY = 12
EMERITUS_YEARS = 21
UNITS_PER_MEMBERSHIP_YEAR = 1


class CertificationError(ValueError):
    """A request that the rules refuse (renewing outside the window, without enough units...)."""


class Program(StrEnum):
    BPI = "BPI"
    BPT = "BPT"
    BPE = "BPE"
    BDS = "BDS"
    BTS = "BTS"
    BTCS = "BTCS"
    DEP = "DEP"
    DVEP = "DVEP"
    IPEP = "IPEP"
    BCE = "BCE"


@dataclass(frozen=True)
class ProgramInfo:
    code: Program
    name: str
    units_per_cycle: int


PROGRAMS: dict[Program, ProgramInfo] = {
    info.code: info
    for info in (
        ProgramInfo(Program.BPI, "Broadband Premises Installer", 12),
        ProgramInfo(Program.BPT, "Broadband Premises Technician", 12),
        ProgramInfo(Program.BPE, "Broadband Premises Expert", 12),
        ProgramInfo(Program.BDS, "Broadband Distribution Specialist", 12),
        ProgramInfo(Program.BTS, "Broadband Transport Specialist", 12),
        ProgramInfo(Program.BTCS, "Broadband TelecomCenter Specialist", 12),
        ProgramInfo(Program.DEP, "DOCSIS Engineering Professional", 12),
        # The engineering-level programs ask for more continuing education.
        ProgramInfo(Program.DVEP, "Digital Video Engineering Professional", 21),
        ProgramInfo(Program.IPEP, "Internet Protocol Engineering Professional", 21),
        ProgramInfo(Program.BCE, "Broadband Communications Engineer", 21),
    )
}
"""SCTE's certification programs, in the order of the career ladder."""


def units_required(program: Program) -> int:
    """RUs needed in one three-year cycle to renew without retaking the exam."""
    return PROGRAMS[program].units_per_cycle


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months (negative: back), clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class CertificationStatus(StrEnum):
    ACTIVE = "active"
    """Valid, renewal not yet possible."""
    RENEWAL_DUE = "renewal_due"
    """Valid, in the six months before expiry: renewal is possible."""
    EXPIRED = "expired"
    """Past expiry, not held any more, still renewable for twelve months."""
    LAPSED = "lapsed"
    """Past the renewal window: gone; the exam must be passed again."""
    EMERITUS = "emeritus"
    """Held for life."""

    @property
    def is_held(self) -> bool:
        """Whether the member may use the designation (post-nominal) today."""
        return self in (CertificationStatus.ACTIVE, CertificationStatus.RENEWAL_DUE, CertificationStatus.EMERITUS)


class RenewalBasis(StrEnum):
    UNITS = "units"
    EXAM = "exam"


@dataclass(frozen=True)
class Certification:
    """One member's certification in one program, across all its renewals.

    `originally_awarded_on` stays the first award's date while the certification is renewed without
    lapsing: it is what the 21 years of emeritus are counted from.
    """

    certification_id: str
    member_id: str
    program: Program
    originally_awarded_on: date
    cycle_start: date
    expires_on: date
    emeritus_on: date | None = None

    @property
    def units_required(self) -> int:
        return units_required(self.program)


def award(certification_id: str, member_id: str, program: Program, awarded_on: date) -> Certification:
    """A new certification after a passed exam: valid three years from the award."""
    return Certification(
        certification_id=certification_id,
        member_id=member_id,
        program=program,
        originally_awarded_on=awarded_on,
        cycle_start=awarded_on,
        expires_on=add_months(awarded_on, 12 * VALIDITY_YEARS),
    )


def renewal_window_opens_on(cert: Certification) -> date:
    return add_months(cert.expires_on, -RENEWAL_WINDOW_MONTHS_BEFORE_EXPIRY)


def lapses_on(cert: Certification) -> date:
    """The first day the certification can no longer be renewed."""
    return add_months(cert.expires_on, LAPSE_MONTHS_AFTER_EXPIRY)


def status_at(cert: Certification, on: date) -> CertificationStatus:
    if cert.emeritus_on is not None and on >= cert.emeritus_on:
        return CertificationStatus.EMERITUS
    if on < renewal_window_opens_on(cert):
        return CertificationStatus.ACTIVE
    if on < cert.expires_on:
        return CertificationStatus.RENEWAL_DUE
    if on < lapses_on(cert):
        return CertificationStatus.EXPIRED
    return CertificationStatus.LAPSED


# --- the recertification-unit ledger ---------------------------------------------------------------


class UnitSource(StrEnum):
    COURSE_COMPLETION = "course_completion"
    MEMBERSHIP_YEAR = "membership_year"
    EVENT_ATTENDANCE = "event_attendance"


@dataclass(frozen=True)
class UnitCredit:
    """Units a member earned on a day. `credit_id` is derived from what earned them, so the same
    course completion or membership year delivered twice is credited once."""

    credit_id: str
    member_id: str
    source: UnitSource
    units: int
    earned_on: date
    reference: str

    def __post_init__(self) -> None:
        if self.units < 0:
            raise CertificationError(f"units must be >= 0, got {self.units}")


def course_credit(member_id: str, completion_id: str, units: int, completed_on: date) -> UnitCredit:
    """A completed course credits exactly its unit value."""
    return UnitCredit(
        f"course:{completion_id}", member_id, UnitSource.COURSE_COMPLETION, units, completed_on, completion_id
    )


def event_credit(member_id: str, attendance_id: str, units: int, attended_on: date) -> UnitCredit:
    return UnitCredit(
        f"event:{attendance_id}", member_id, UnitSource.EVENT_ATTENDANCE, units, attended_on, attendance_id
    )


def membership_credits(member_id: str, term_start: date, term_end: date) -> list[UnitCredit]:
    """One unit per full year of a paid membership term, each dated on the day that year begins.

    A year is earned by being a member during it, so a unit is dated at the start of its year and
    counts toward the cycle that year starts in. Parts of a year earn nothing.
    """
    credits: list[UnitCredit] = []
    year_start = term_start
    while add_months(year_start, 12) <= term_end:
        credits.append(
            UnitCredit(
                f"membership:{member_id}:{year_start.isoformat()}",
                member_id,
                UnitSource.MEMBERSHIP_YEAR,
                UNITS_PER_MEMBERSHIP_YEAR,
                year_start,
                member_id,
            )
        )
        year_start = add_months(year_start, 12)
    return credits


@dataclass
class UnitLedger:
    """A member's RU credits. Units are the member's, not one certification's: each certification
    counts every credit earned during its own current cycle."""

    member_id: str
    _credits: dict[str, UnitCredit] = field(default_factory=dict)

    def credit(self, credit: UnitCredit) -> bool:
        """Add a credit; False when it was already there (a redelivered event)."""
        if credit.member_id != self.member_id:
            raise CertificationError(f"credit for {credit.member_id} on the ledger of {self.member_id}")
        if credit.credit_id in self._credits:
            return False
        self._credits[credit.credit_id] = credit
        return True

    def __iter__(self) -> Iterator[UnitCredit]:
        return iter(sorted(self._credits.values(), key=lambda c: (c.earned_on, c.credit_id)))

    def units_between(self, start: date, end: date) -> int:
        """Units earned on days in [start, end)."""
        return sum(c.units for c in self._credits.values() if start <= c.earned_on < end)

    def units_in_cycle(self, cert: Certification) -> int:
        """Units that count toward `cert`'s renewal: those earned during its current cycle."""
        return self.units_between(cert.cycle_start, cert.expires_on)


def units_still_needed(cert: Certification, ledger: UnitLedger) -> int:
    return max(0, cert.units_required - ledger.units_in_cycle(cert))


def requirements_just_met(cert: Certification, units_before: int, units_after: int) -> bool:
    """Whether a credit brought the cycle's units up to the requirement: the one moment to tell the
    member that renewal is possible (recert.requirements_met), not on every later credit."""
    return units_before < cert.units_required <= units_after


# --- renewal ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenewalCheck:
    """Whether a certification can be renewed on a day, and if not, why (for the member to read)."""

    possible: bool
    reason: str | None
    units_earned: int
    units_required: int


def check_renewal(
    cert: Certification, ledger: UnitLedger, on: date, basis: RenewalBasis = RenewalBasis.UNITS
) -> RenewalCheck:
    earned = ledger.units_in_cycle(cert)
    required = cert.units_required

    def refused(reason: str) -> RenewalCheck:
        return RenewalCheck(False, reason, earned, required)

    status = status_at(cert, on)
    if status is CertificationStatus.EMERITUS:
        return refused("emeritus certifications need no renewal")
    if status is CertificationStatus.ACTIVE:
        return refused(f"renewal opens on {renewal_window_opens_on(cert).isoformat()}")
    if status is CertificationStatus.LAPSED:
        return refused("the certification has lapsed: the exam must be passed again")
    if basis is RenewalBasis.UNITS and earned < required:
        return refused(f"{required - earned} more recertification units are needed ({earned} of {required})")
    return RenewalCheck(True, None, earned, required)


def can_renew(cert: Certification, ledger: UnitLedger, on: date) -> bool:
    return check_renewal(cert, ledger, on).possible


def renew(cert: Certification, ledger: UnitLedger, on: date, basis: RenewalBasis = RenewalBasis.UNITS) -> Certification:
    """The next cycle: three years from the previous expiry, whatever day the renewal happens."""
    check = check_renewal(cert, ledger, on, basis)
    if not check.possible:
        raise CertificationError(check.reason)
    return replace(cert, cycle_start=cert.expires_on, expires_on=add_months(cert.expires_on, 12 * VALIDITY_YEARS))


class ExamEffect(StrEnum):
    AWARD = "award"
    """No certification in the program is held or renewable: a new one starts."""
    RENEW = "renew"
    """The certification is in its renewal window (or expired, not lapsed): the exam renews it."""
    NONE = "none"
    """Already held and not yet renewable (or emeritus): nothing changes."""


def effect_of_exam_pass(current: Certification | None, on: date) -> ExamEffect:
    """What passing a program's exam does, given the member's certification in that program."""
    if current is None:
        return ExamEffect.AWARD
    status = status_at(current, on)
    if status is CertificationStatus.LAPSED:
        return ExamEffect.AWARD
    if status in (CertificationStatus.RENEWAL_DUE, CertificationStatus.EXPIRED):
        return ExamEffect.RENEW
    return ExamEffect.NONE


# --- emeritus --------------------------------------------------------------------------------------


def emeritus_eligible_on(cert: Certification) -> date:
    return add_months(cert.originally_awarded_on, 12 * EMERITUS_YEARS)


def is_emeritus_due(cert: Certification, on: date) -> bool:
    """21 years since the first award, and held on that day.

    The 21st anniversary is also the end of the seventh cycle, so a member who has renewed the
    seventh time holds the certification on it; one in the post-expiry grace period becomes due on
    the day they renew (the grace period is not a lapse, a lapse would have started a new
    certification with a new first award).
    """
    if cert.emeritus_on is not None or on < emeritus_eligible_on(cert):
        return False
    return status_at(cert, on).is_held


def grant_emeritus(cert: Certification, on: date) -> Certification:
    if not is_emeritus_due(cert, on):
        raise CertificationError(
            f"emeritus needs {EMERITUS_YEARS} years of continuous certification "
            f"(eligible from {emeritus_eligible_on(cert).isoformat()}) and a certification held on {on.isoformat()}"
        )
    return replace(cert, emeritus_on=on)


# --- the schedule ----------------------------------------------------------------------------------


class MilestoneKind(StrEnum):
    WINDOW_OPENS = "window_opens"
    EXPIRES = "expires"
    LAPSES = "lapses"
    EMERITUS_ELIGIBLE = "emeritus_eligible"


@dataclass(frozen=True)
class Milestone:
    on: date
    kind: MilestoneKind


def milestones(cert: Certification) -> list[Milestone]:
    """The days the scheduler must wake up for this cycle, in order: each is a status change that
    publishes an event (recert.window_opened, certification.expired, certification.lapsed) or makes
    emeritus possible. Renewal replaces the certification, and so its milestones."""
    if cert.emeritus_on is not None:
        return []
    found = [
        Milestone(renewal_window_opens_on(cert), MilestoneKind.WINDOW_OPENS),
        Milestone(cert.expires_on, MilestoneKind.EXPIRES),
        Milestone(lapses_on(cert), MilestoneKind.LAPSES),
    ]
    eligible = emeritus_eligible_on(cert)
    if cert.cycle_start <= eligible < lapses_on(cert):
        found.append(Milestone(eligible, MilestoneKind.EMERITUS_ELIGIBLE))
    return sorted(found, key=lambda m: (m.on, list(MilestoneKind).index(m.kind)))


def held_programs(certs: Iterable[Certification], on: date) -> list[Program]:
    """The programs whose designation a member may use on a day, in career-ladder order."""
    held = {c.program for c in certs if status_at(c, on).is_held}
    return [p for p in PROGRAMS if p in held]
