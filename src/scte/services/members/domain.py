"""Members rules: membership terms and standing, designations, profiles, passwords.

Membership is paid yearly (dues). Paying while the membership is active, or within the grace period
after its end, extends it from the current term's end, so the member keeps continuous membership
(and the recertification unit each year of it earns). Paying after the grace period starts a new
membership on the payment day.

Designations are the post-nominals of the certifications a member holds ("BPI, BDS"); an emeritus
certification is shown with "-E" ("BPI-E"). Members keeps them from certification events in its own
read model, hence the plain program codes here.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email

from .password_policy import MAX_LENGTH as PASSWORD_MAX_LENGTH
from .password_policy import MIN_LENGTH as PASSWORD_MIN_LENGTH
from .password_policy import password_problems

__all__ = [
    "GRACE_PERIOD",
    "PASSWORD_MAX_LENGTH",
    "PASSWORD_MIN_LENGTH",
    "TERM_MONTHS",
    "HeldCertification",
    "MemberStatus",
    "MembersError",
    "Membership",
    "Profile",
    "TermChange",
    "designations",
    "display_with_designations",
    "lapses_on",
    "member_status",
    "normalize_email",
    "password_problems",
    "pay_dues",
    "text_problem",
    "validate_profile",
]

TERM_MONTHS = 12
GRACE_PERIOD = timedelta(days=30)


class MembersError(ValueError):
    """Input the rules refuse; the message is for the member."""


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- membership ------------------------------------------------------------------------------------


class MemberStatus(StrEnum):
    PROSPECT = "prospect"
    """Registered, dues never paid."""
    ACTIVE = "active"
    GRACE = "grace"
    """The term ended less than GRACE_PERIOD ago: still treated as a member, reminded to pay."""
    LAPSED = "lapsed"


@dataclass(frozen=True)
class Membership:
    """The current term [term_start, term_end) and the first day of continuous membership."""

    member_id: str
    member_since: date
    term_start: date
    term_end: date


class TermChange(StrEnum):
    STARTED = "started"
    RENEWED = "renewed"


def lapses_on(membership: Membership) -> date:
    """The first day of LAPSED status if no dues are paid."""
    return membership.term_end + GRACE_PERIOD


def member_status(membership: Membership | None, on: date) -> MemberStatus:
    if membership is None:
        return MemberStatus.PROSPECT
    if on < membership.term_end:
        return MemberStatus.ACTIVE
    if on < lapses_on(membership):
        return MemberStatus.GRACE
    return MemberStatus.LAPSED


def pay_dues(current: Membership | None, member_id: str, paid_on: date) -> tuple[Membership, TermChange]:
    """The membership after a year's dues are paid on `paid_on`.

    Active or in grace: the new term follows the current one (paying early loses nothing, paying
    in grace gains nothing). Never a member, or lapsed: a new membership starts on the payment day.
    """
    if current is not None and current.member_id != member_id:
        raise MembersError("dues paid for another member's membership")
    if current is not None and member_status(current, paid_on) in (MemberStatus.ACTIVE, MemberStatus.GRACE):
        start = current.term_end
        renewed = Membership(member_id, current.member_since, start, _add_months(start, TERM_MONTHS))
        return renewed, TermChange.RENEWED
    started = Membership(member_id, paid_on, paid_on, _add_months(paid_on, TERM_MONTHS))
    return started, TermChange.STARTED


# --- designations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldCertification:
    """A certification the member holds today (awarded or renewed, not expired or lapsed)."""

    program: str
    emeritus: bool = False


def designations(held: Iterable[HeldCertification]) -> tuple[str, ...]:
    """Post-nominals, one per program, sorted by code so that every page shows them alike."""
    by_program: dict[str, bool] = {}
    for cert in held:
        by_program[cert.program] = by_program.get(cert.program, False) or cert.emeritus
    return tuple(f"{code}-E" if emeritus else code for code, emeritus in sorted(by_program.items()))


def display_with_designations(display_name: str, held: Iterable[HeldCertification]) -> str:
    """The name as the directory and certificates print it: Jane Doe, BDS, BPI-E."""
    return ", ".join((display_name, *designations(held)))


# --- profile ---------------------------------------------------------------------------------------

DISPLAY_NAME_MAX = 100


@dataclass(frozen=True)
class Profile:
    member_id: str
    email: str
    display_name: str
    city: str | None = None
    country: str | None = None
    listed_in_directory: bool = False
    """Off until the member opts in: the directory is public to other members."""


def normalize_email(email: str) -> str:
    """The e-mail address as stored and compared: the sign-in name, so one spelling per mailbox.

    NFKC first (`staff@` spelt with the long s U+017F or the full-width s U+FF53 becomes `staff@`,
    so it meets the existing account instead of impersonating it), then email-validator's syntax rules: a local part in
    ASCII only (no look-alike letters from other scripts), a domain in its ASCII (IDNA) form, no
    trailing dot, no reserved domain; compared case-insensitively, so stored lower-cased."""
    cleaned = unicodedata.normalize("NFKC", email.strip())
    if len(cleaned) > 254:
        raise MembersError("an e-mail address has at most 254 characters")
    try:
        valid = validate_email(cleaned, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise MembersError(f"{email!r} is not a usable e-mail address: {exc}") from None
    return valid.ascii_email.lower()  # type: ignore[union-attr]  # always set when smtputf8 is refused


# Bidirectional controls reorder what a page shows ("\u202eexe.pdf" reads "fdp.exe"): a name could
# pose as another one in lists and certificates. Control characters (NUL, newlines) break mails and
# logs.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def text_problem(value: str, what: str) -> str | None:
    """Why a free-text field (a name, a city) is refused, or None."""
    for char in value:
        if char in _BIDI_CONTROLS:
            return f"{what} must not contain bidirectional control characters (U+{ord(char):04X})"
        if unicodedata.category(char) == "Cc":
            return f"{what} must not contain control characters (U+{ord(char):04X})"
    return None


def validate_profile(profile: Profile) -> Profile:
    """The profile as stored: email normalised, name trimmed; refused when a rule is broken."""
    for value, what in ((profile.display_name, "a display name"), (profile.city or "", "a city")):
        problem = text_problem(value, what)
        if problem:
            raise MembersError(problem)
    name = " ".join(unicodedata.normalize("NFC", profile.display_name).split())
    if not name:
        raise MembersError("a display name is required")
    if len(name) > DISPLAY_NAME_MAX:
        raise MembersError(f"a display name has at most {DISPLAY_NAME_MAX} characters")
    country = profile.country.strip().upper() if profile.country else None
    if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
        raise MembersError("country is a two-letter ISO 3166 code")
    return Profile(
        profile.member_id,
        normalize_email(profile.email),
        name,
        (profile.city.strip() or None) if profile.city else None,
        country,
        profile.listed_in_directory,
    )


# --- passwords -------------------------------------------------------------------------------------
# The policy lives in password_policy.py; re-exported here as one of the rules.
