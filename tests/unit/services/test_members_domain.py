"""Members rules: yearly terms, grace and lapse, renewal from the current end or the payment day,
designations, profiles (the password policy: test_members_password_policy.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from scte.services.members.domain import (
    GRACE_PERIOD,
    HeldCertification,
    MembersError,
    Membership,
    MemberStatus,
    Profile,
    TermChange,
    designations,
    display_with_designations,
    lapses_on,
    member_status,
    normalize_email,
    pay_dues,
    validate_profile,
)

DAY = timedelta(days=1)
TERM = Membership("m-1", member_since=date(2020, 5, 10), term_start=date(2024, 5, 10), term_end=date(2025, 5, 10))


def test_a_member_who_never_paid_is_a_prospect() -> None:
    assert member_status(None, date(2025, 1, 1)) is MemberStatus.PROSPECT


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2024, 5, 10), MemberStatus.ACTIVE),
        (date(2025, 5, 9), MemberStatus.ACTIVE),
        (date(2025, 5, 10), MemberStatus.GRACE),
        (date(2025, 5, 10) + GRACE_PERIOD - DAY, MemberStatus.GRACE),
        (date(2025, 5, 10) + GRACE_PERIOD, MemberStatus.LAPSED),
    ],
)
def test_status_active_then_grace_then_lapsed(on: date, expected: MemberStatus) -> None:
    assert member_status(TERM, on) is expected


def test_grace_lasts_30_days() -> None:
    assert lapses_on(TERM) == date(2025, 6, 9)


def test_paying_first_dues_starts_a_membership_on_the_payment_day() -> None:
    membership, change = pay_dues(None, "m-1", date(2025, 3, 3))
    assert change is TermChange.STARTED
    assert (membership.member_since, membership.term_start, membership.term_end) == (
        date(2025, 3, 3),
        date(2025, 3, 3),
        date(2026, 3, 3),
    )


@pytest.mark.parametrize("paid_on", [date(2025, 1, 1), date(2025, 5, 9), date(2025, 5, 10), lapses_on(TERM) - DAY])
def test_renewal_while_active_or_in_grace_extends_from_the_current_end(paid_on: date) -> None:
    renewed, change = pay_dues(TERM, "m-1", paid_on)
    assert change is TermChange.RENEWED
    assert (renewed.term_start, renewed.term_end) == (date(2025, 5, 10), date(2026, 5, 10))
    assert renewed.member_since == date(2020, 5, 10)


def test_renewal_after_a_lapse_starts_from_the_payment_day() -> None:
    paid_on = lapses_on(TERM)
    renewed, change = pay_dues(TERM, "m-1", paid_on)
    assert change is TermChange.STARTED
    assert (renewed.member_since, renewed.term_start, renewed.term_end) == (paid_on, paid_on, date(2026, 6, 9))


def test_a_leap_day_term_ends_on_28_february() -> None:
    membership, _ = pay_dues(None, "m-1", date(2024, 2, 29))
    assert membership.term_end == date(2025, 2, 28)


def test_dues_for_another_member_are_refused() -> None:
    with pytest.raises(MembersError):
        pay_dues(TERM, "m-2", date(2025, 1, 1))


# --- designations ----------------------------------------------------------------------------------


def test_designations_are_sorted_and_unique_with_emeritus_marked() -> None:
    held = [
        HeldCertification("BPI"),
        HeldCertification("BDS", emeritus=True),
        HeldCertification("BPI"),
        HeldCertification("BCE"),
    ]
    assert designations(held) == ("BCE", "BDS-E", "BPI")
    assert display_with_designations("Jane Doe", held) == "Jane Doe, BCE, BDS-E, BPI"
    assert display_with_designations("Jane Doe", []) == "Jane Doe"


# --- profile ---------------------------------------------------------------------------------------


def test_email_is_trimmed_and_lower_cased() -> None:
    assert normalize_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"


@pytest.mark.parametrize("email", ["", "jane", "jane@", "@example.com", "jane@example", "a b@example.com"])
def test_invalid_emails_are_refused(email: str) -> None:
    with pytest.raises(MembersError):
        normalize_email(email)


def test_profile_is_normalised() -> None:
    profile = validate_profile(Profile("m-1", "JD@X.ORG", "  Jane   Doe ", city="  ", country="us"))
    assert (profile.email, profile.display_name, profile.city, profile.country) == ("jd@x.org", "Jane Doe", None, "US")
    assert profile.listed_in_directory is False


@pytest.mark.parametrize(
    ("name", "country", "message"),
    [(" ", None, "required"), ("x" * 101, None, "at most 100"), ("Jane", "USA", "two-letter")],
)
def test_profile_rules(name: str, country: str | None, message: str) -> None:
    with pytest.raises(MembersError, match=message):
        validate_profile(Profile("m-1", "jd@x.org", name, country=country))
    validate_profile(Profile("m-1", "jd@x.org", "x" * 100))
