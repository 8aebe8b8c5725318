"""Certification rules: three-year validity, the renewal window (6 months before to 12 after expiry),
12 or 21 units per cycle, the unit ledger, renewals and emeritus after 21 years."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from scte.services.certification.domain import (
    PROGRAMS,
    Certification,
    CertificationError,
    CertificationStatus,
    ExamEffect,
    Milestone,
    MilestoneKind,
    Program,
    RenewalBasis,
    UnitCredit,
    UnitLedger,
    UnitSource,
    add_months,
    award,
    can_renew,
    check_renewal,
    course_credit,
    effect_of_exam_pass,
    emeritus_eligible_on,
    event_credit,
    grant_emeritus,
    held_programs,
    is_emeritus_due,
    lapses_on,
    membership_credits,
    milestones,
    renew,
    renewal_window_opens_on,
    requirements_just_met,
    status_at,
    units_required,
    units_still_needed,
)

DAY = timedelta(days=1)
MEMBER = "m-1"


def cert(program: Program = Program.BPI, awarded_on: date = date(2024, 3, 15)) -> Certification:
    return award("c-1", MEMBER, program, awarded_on)


def ledger_with(*credits: tuple[int, date]) -> UnitLedger:
    ledger = UnitLedger(MEMBER)
    for i, (units, on) in enumerate(credits):
        ledger.credit(course_credit(MEMBER, f"done-{i}", units, on))
    return ledger


# --- programs --------------------------------------------------------------------------------------


def test_ten_programs_with_their_names() -> None:
    assert [p.value for p in PROGRAMS] == ["BPI", "BPT", "BPE", "BDS", "BTS", "BTCS", "DEP", "DVEP", "IPEP", "BCE"]
    assert PROGRAMS[Program.BPI].name == "Broadband Premises Installer"
    assert PROGRAMS[Program.BTCS].name == "Broadband TelecomCenter Specialist"
    assert PROGRAMS[Program.BCE].name == "Broadband Communications Engineer"
    assert all(info.code is code for code, info in PROGRAMS.items())


@pytest.mark.parametrize("program", list(Program))
def test_units_per_cycle_are_21_for_dvep_ipep_bce_and_12_otherwise(program: Program) -> None:
    expected = 21 if program in (Program.DVEP, Program.IPEP, Program.BCE) else 12
    assert units_required(program) == expected
    assert cert(program).units_required == expected


# --- dates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 2, 29), 36, date(2027, 2, 28)),
        (date(2024, 2, 29), 48, date(2028, 2, 29)),
        (date(2027, 3, 31), -6, date(2026, 9, 30)),
        (date(2024, 12, 15), 1, date(2025, 1, 15)),
        (date(2025, 1, 15), -1, date(2024, 12, 15)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


# --- life cycle ------------------------------------------------------------------------------------


def test_a_certification_is_valid_three_years_from_its_award() -> None:
    c = cert(awarded_on=date(2024, 3, 15))
    assert c.cycle_start == c.originally_awarded_on == date(2024, 3, 15)
    assert c.expires_on == date(2027, 3, 15)
    assert renewal_window_opens_on(c) == date(2026, 9, 15)
    assert lapses_on(c) == date(2028, 3, 15)


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2024, 3, 15), CertificationStatus.ACTIVE),
        (date(2026, 9, 14), CertificationStatus.ACTIVE),
        (date(2026, 9, 15), CertificationStatus.RENEWAL_DUE),  # exactly 6 months before expiry
        (date(2027, 3, 14), CertificationStatus.RENEWAL_DUE),  # last valid day
        (date(2027, 3, 15), CertificationStatus.EXPIRED),  # expiry day: no longer held
        (date(2028, 3, 14), CertificationStatus.EXPIRED),  # last renewable day
        (date(2028, 3, 15), CertificationStatus.LAPSED),  # exactly 12 months after expiry
        (date(2040, 1, 1), CertificationStatus.LAPSED),
    ],
)
def test_status_at_the_boundaries(on: date, expected: CertificationStatus) -> None:
    assert status_at(cert(), on) is expected


def test_held_only_while_valid_or_emeritus() -> None:
    assert {s for s in CertificationStatus if s.is_held} == {
        CertificationStatus.ACTIVE,
        CertificationStatus.RENEWAL_DUE,
        CertificationStatus.EMERITUS,
    }


def test_leap_day_award_expires_on_28_february() -> None:
    c = cert(awarded_on=date(2024, 2, 29))
    assert c.expires_on == date(2027, 2, 28)
    assert renewal_window_opens_on(c) == date(2026, 8, 28)
    assert lapses_on(c) == date(2028, 2, 28)  # not the 29th, although 2028 is a leap year
    assert status_at(c, date(2027, 2, 27)) is CertificationStatus.RENEWAL_DUE
    assert status_at(c, date(2027, 2, 28)) is CertificationStatus.EXPIRED
    assert status_at(c, date(2028, 2, 27)) is CertificationStatus.EXPIRED
    assert status_at(c, date(2028, 2, 28)) is CertificationStatus.LAPSED


def test_window_opening_clamps_from_a_month_end_expiry() -> None:
    c = cert(awarded_on=date(2023, 8, 31))
    assert c.expires_on == date(2026, 8, 31)
    assert renewal_window_opens_on(c) == date(2026, 2, 28)


# --- ledger ----------------------------------------------------------------------------------------


def test_a_course_completion_credits_its_unit_value() -> None:
    credit = course_credit(MEMBER, "comp-9", 4, date(2025, 1, 2))
    assert (credit.units, credit.source, credit.earned_on) == (4, UnitSource.COURSE_COMPLETION, date(2025, 1, 2))
    assert credit.credit_id == "course:comp-9"


def test_event_attendance_credits_its_units() -> None:
    credit = event_credit(MEMBER, "att-1", 2, date(2025, 6, 1))
    assert (credit.units, credit.source, credit.credit_id) == (2, UnitSource.EVENT_ATTENDANCE, "event:att-1")


def test_negative_units_are_refused() -> None:
    with pytest.raises(CertificationError):
        course_credit(MEMBER, "x", -1, date(2025, 1, 1))


@pytest.mark.parametrize(
    ("start", "end", "expected_days"),
    [
        (date(2024, 1, 1), date(2025, 1, 1), [date(2024, 1, 1)]),
        (date(2024, 1, 1), date(2024, 12, 31), []),  # a day short of a year earns nothing
        (date(2024, 1, 1), date(2026, 1, 1), [date(2024, 1, 1), date(2025, 1, 1)]),
        (date(2024, 2, 29), date(2025, 2, 28), [date(2024, 2, 29)]),
    ],
)
def test_one_unit_per_full_year_of_membership(start: date, end: date, expected_days: list[date]) -> None:
    credits = membership_credits(MEMBER, start, end)
    assert [c.earned_on for c in credits] == expected_days
    assert all(c.units == 1 and c.source is UnitSource.MEMBERSHIP_YEAR for c in credits)


def test_the_same_credit_counts_once() -> None:
    ledger = UnitLedger(MEMBER)
    credit = course_credit(MEMBER, "comp-1", 5, date(2025, 1, 1))
    assert ledger.credit(credit) is True
    assert ledger.credit(credit) is False
    for year in membership_credits(MEMBER, date(2025, 1, 1), date(2026, 1, 1)) * 2:
        ledger.credit(year)
    assert ledger.units_between(date(2000, 1, 1), date(2100, 1, 1)) == 6
    assert [c.credit_id for c in ledger] == ["course:comp-1", f"membership:{MEMBER}:2025-01-01"]


def test_a_ledger_refuses_another_members_credit() -> None:
    with pytest.raises(CertificationError):
        UnitLedger(MEMBER).credit(course_credit("m-2", "comp-1", 1, date(2025, 1, 1)))


def test_units_count_only_inside_the_current_cycle() -> None:
    c = cert(awarded_on=date(2024, 3, 15))
    ledger = ledger_with(
        (100, date(2024, 3, 14)),  # before the award
        (1, date(2024, 3, 15)),  # award day: counts
        (2, date(2027, 3, 14)),  # last day of the cycle: counts
        (50, date(2027, 3, 15)),  # expiry day: belongs to the next cycle
    )
    assert ledger.units_in_cycle(c) == 3
    assert units_still_needed(c, ledger) == 9


def test_units_still_needed_never_goes_below_zero() -> None:
    c = cert()
    assert units_still_needed(c, ledger_with((30, c.cycle_start))) == 0
    assert units_still_needed(c, UnitLedger(MEMBER)) == 12


@pytest.mark.parametrize(
    ("program", "before", "after", "expected"),
    [
        (Program.BPI, 10, 12, True),
        (Program.BPI, 11, 20, True),
        (Program.BPI, 10, 11, False),
        (Program.BPI, 12, 14, False),  # already met: said once
        (Program.BCE, 10, 12, False),
        (Program.BCE, 20, 21, True),
    ],
)
def test_requirements_met_is_told_once_per_cycle(program: Program, before: int, after: int, expected: bool) -> None:
    assert requirements_just_met(cert(program), before, after) is expected


# --- renewal ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "units", "possible"),
    [
        (Program.BPI, 11, False),
        (Program.BPI, 12, True),
        (Program.DVEP, 12, False),
        (Program.DVEP, 20, False),
        (Program.DVEP, 21, True),
        (Program.IPEP, 21, True),
        (Program.BCE, 20, False),
        (Program.DEP, 12, True),
    ],
)
def test_renewal_needs_12_or_21_units(program: Program, units: int, possible: bool) -> None:
    c = cert(program)
    ledger = ledger_with((units, date(2025, 1, 1)))
    assert can_renew(c, ledger, renewal_window_opens_on(c)) is possible


def test_renewal_is_possible_from_6_months_before_until_12_months_after_expiry() -> None:
    c = cert()
    ledger = ledger_with((12, date(2025, 1, 1)))
    opens, lapse = renewal_window_opens_on(c), lapses_on(c)
    assert not can_renew(c, ledger, opens - DAY)
    assert can_renew(c, ledger, opens)
    assert can_renew(c, ledger, c.expires_on)
    assert can_renew(c, ledger, lapse - DAY)
    assert not can_renew(c, ledger, lapse)


def test_a_refusal_says_why() -> None:
    c = cert(Program.IPEP)
    ledger = ledger_with((5, date(2025, 1, 1)))
    early = check_renewal(c, ledger, date(2025, 1, 1))
    assert early.reason == "renewal opens on 2026-09-15"
    short = check_renewal(c, ledger, date(2026, 10, 1))
    assert (short.possible, short.units_earned, short.units_required) == (False, 5, 21)
    assert short.reason is not None and "16 more" in short.reason
    late = check_renewal(c, ledger, date(2028, 3, 15))
    assert late.reason is not None and "lapsed" in late.reason


@pytest.mark.parametrize("renewed_on", [date(2026, 9, 15), date(2027, 3, 15), date(2028, 3, 14)])
def test_a_renewal_starts_the_new_cycle_at_the_previous_expiry(renewed_on: date) -> None:
    c = cert(awarded_on=date(2024, 3, 15))
    renewed = renew(c, ledger_with((12, date(2025, 1, 1))), renewed_on)
    assert renewed.cycle_start == date(2027, 3, 15)
    assert renewed.expires_on == date(2030, 3, 15)
    assert renewed.originally_awarded_on == date(2024, 3, 15)
    assert status_at(renewed, renewed_on) in (CertificationStatus.ACTIVE, CertificationStatus.RENEWAL_DUE)


def test_renewing_late_restores_the_designation() -> None:
    c = cert()
    on = date(2027, 6, 1)
    assert not status_at(c, on).is_held
    renewed = renew(c, ledger_with((12, date(2025, 1, 1))), on)
    assert status_at(renewed, on) is CertificationStatus.ACTIVE


def test_units_of_the_old_cycle_do_not_carry_over() -> None:
    c = cert()
    ledger = ledger_with((40, date(2025, 1, 1)))
    renewed = renew(c, ledger, date(2027, 1, 1))
    assert ledger.units_in_cycle(renewed) == 0
    assert units_still_needed(renewed, ledger) == 12


def test_renewal_refused_outside_the_window_or_short_of_units() -> None:
    c = cert()
    with pytest.raises(CertificationError, match="renewal opens"):
        renew(c, ledger_with((12, date(2025, 1, 1))), date(2026, 9, 14))
    with pytest.raises(CertificationError, match="more recertification units"):
        renew(c, ledger_with((11, date(2025, 1, 1))), date(2026, 9, 15))
    with pytest.raises(CertificationError, match="lapsed"):
        renew(c, ledger_with((12, date(2025, 1, 1))), date(2028, 3, 15))


def test_passing_the_exam_again_renews_without_units() -> None:
    c = cert()
    renewed = renew(c, UnitLedger(MEMBER), date(2026, 12, 1), RenewalBasis.EXAM)
    assert renewed.expires_on == date(2030, 3, 15)
    with pytest.raises(CertificationError):
        renew(c, UnitLedger(MEMBER), date(2026, 1, 1), RenewalBasis.EXAM)


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2025, 1, 1), ExamEffect.NONE),
        (date(2026, 9, 15), ExamEffect.RENEW),
        (date(2027, 3, 15), ExamEffect.RENEW),
        (date(2028, 3, 15), ExamEffect.AWARD),
    ],
)
def test_what_passing_the_exam_does(on: date, expected: ExamEffect) -> None:
    assert effect_of_exam_pass(cert(), on) is expected
    assert effect_of_exam_pass(None, on) is ExamEffect.AWARD


# --- emeritus --------------------------------------------------------------------------------------


def renewed_every_cycle(c: Certification, cycles: int) -> Certification:
    """Renew `cycles` times, each on the day its window opens, with 12 units from its first day."""
    ledger = UnitLedger(MEMBER)
    for i in range(cycles):
        ledger.credit(course_credit(MEMBER, f"cycle-{i}", 12, c.cycle_start))
        c = renew(c, ledger, renewal_window_opens_on(c))
    return c


def test_emeritus_after_21_years_of_continuous_certification() -> None:
    c = renewed_every_cycle(cert(awarded_on=date(2000, 3, 1)), 7)
    assert emeritus_eligible_on(c) == date(2021, 3, 1)
    assert c.expires_on == date(2024, 3, 1)
    assert not is_emeritus_due(c, date(2021, 2, 28))
    assert is_emeritus_due(c, date(2021, 3, 1))
    granted = grant_emeritus(c, date(2021, 3, 1))
    assert status_at(granted, date(2021, 3, 1)) is CertificationStatus.EMERITUS
    assert status_at(granted, date(2090, 1, 1)) is CertificationStatus.EMERITUS
    assert not is_emeritus_due(granted, date(2021, 3, 2))
    assert check_renewal(granted, UnitLedger(MEMBER), date(2030, 1, 1)).possible is False
    assert milestones(granted) == []
    assert effect_of_exam_pass(granted, date(2030, 1, 1)) is ExamEffect.NONE


def test_emeritus_waits_for_a_renewal_made_in_the_grace_period() -> None:
    six_times = renewed_every_cycle(cert(awarded_on=date(2000, 3, 1)), 6)
    assert six_times.expires_on == date(2021, 3, 1)
    assert status_at(six_times, date(2021, 3, 1)) is CertificationStatus.EXPIRED
    assert not is_emeritus_due(six_times, date(2021, 3, 1))
    with pytest.raises(CertificationError, match="21 years"):
        grant_emeritus(six_times, date(2021, 3, 1))
    late = renew(six_times, ledger_with((12, date(2019, 1, 1))), date(2021, 9, 1))
    assert is_emeritus_due(late, date(2021, 9, 1))


def test_a_lapse_restarts_the_21_years() -> None:
    first = renewed_every_cycle(cert(awarded_on=date(2000, 3, 1)), 3)
    assert status_at(first, date(2014, 1, 1)) is CertificationStatus.LAPSED
    again = award("c-2", MEMBER, Program.BPI, date(2014, 1, 1))
    assert emeritus_eligible_on(again) == date(2035, 1, 1)
    assert not is_emeritus_due(renewed_every_cycle(again, 7), date(2034, 12, 31))


def test_emeritus_from_a_leap_day_award() -> None:
    c = renewed_every_cycle(cert(awarded_on=date(2000, 2, 29)), 7)
    assert emeritus_eligible_on(c) == date(2021, 2, 28)
    assert not is_emeritus_due(c, date(2021, 2, 27))
    assert is_emeritus_due(c, date(2021, 2, 28))


# --- schedule and designations ---------------------------------------------------------------------


def test_milestones_of_a_cycle_in_order() -> None:
    assert milestones(cert()) == [
        Milestone(date(2026, 9, 15), MilestoneKind.WINDOW_OPENS),
        Milestone(date(2027, 3, 15), MilestoneKind.EXPIRES),
        Milestone(date(2028, 3, 15), MilestoneKind.LAPSES),
    ]


def test_the_cycle_reaching_21_years_schedules_emeritus() -> None:
    c = renewed_every_cycle(cert(awarded_on=date(2000, 3, 1)), 6)
    assert Milestone(date(2021, 3, 1), MilestoneKind.EMERITUS_ELIGIBLE) in milestones(c)
    assert all(m.kind is not MilestoneKind.EMERITUS_ELIGIBLE for m in milestones(cert()))


def test_held_programs_in_ladder_order() -> None:
    on = date(2025, 1, 1)
    certs = [
        award("c-1", MEMBER, Program.BCE, date(2024, 1, 1)),
        award("c-2", MEMBER, Program.BPI, date(2024, 1, 1)),
        award("c-3", MEMBER, Program.BDS, date(2019, 1, 1)),  # expired in 2022
    ]
    assert held_programs(certs, on) == [Program.BPI, Program.BCE]


def test_credit_dataclass_is_immutable() -> None:
    credit = UnitCredit("k", MEMBER, UnitSource.EVENT_ATTENDANCE, 1, date(2025, 1, 1), "r")
    with pytest.raises(AttributeError):
        credit.units = 5  # type: ignore[misc]
