"""Companies rules: current employment, roles (one admin at least), and the rollup figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from scte.services.companies.domain import (
    CertificationView,
    CompaniesError,
    CompanyRole,
    Employment,
    SpendEntry,
    can_manage,
    can_view_reports,
    certified_headcount,
    compute_rollup,
    current_employees,
    expiring_within,
    revoke_role,
    training_spend,
)

ON = date(2025, 6, 1)
LINKS = [
    Employment("m-1", "co-1", date(2020, 1, 1)),
    Employment("m-2", "co-1", date(2024, 1, 1), ended_on=ON),  # left today
    Employment("m-3", "co-1", ON),  # joined today
    Employment("m-4", "co-2", date(2020, 1, 1)),
    Employment("m-5", "co-1", date(2025, 6, 2)),  # not yet
]


def view(cid: str, member: str, program: str, expires: date | None, held: bool = True) -> CertificationView:
    return CertificationView(cid, member, program, expires, held)


def test_current_employees_on_a_day() -> None:
    assert current_employees(LINKS, "co-1", ON) == {"m-1", "m-3"}
    assert current_employees(LINKS, "co-1", ON - timedelta(days=1)) == {"m-1", "m-2"}


def test_an_employment_cannot_end_before_it_starts() -> None:
    with pytest.raises(CompaniesError):
        Employment("m", "co", date(2025, 1, 2), ended_on=date(2025, 1, 1))


def test_roles() -> None:
    assert can_manage([CompanyRole.ADMIN]) and can_view_reports([CompanyRole.ADMIN])
    assert can_view_reports([CompanyRole.REPORT_VIEWER]) and not can_manage([CompanyRole.REPORT_VIEWER])
    assert not can_view_reports([]) and not can_manage([])


def test_the_last_admin_cannot_be_removed() -> None:
    grants = {"m-1": {CompanyRole.ADMIN}, "m-2": {CompanyRole.ADMIN, CompanyRole.REPORT_VIEWER}}
    after = revoke_role(grants, "m-1", CompanyRole.ADMIN)
    assert after == {"m-2": {CompanyRole.ADMIN, CompanyRole.REPORT_VIEWER}}
    assert grants["m-1"] == {CompanyRole.ADMIN}, "the input is not changed"
    with pytest.raises(CompaniesError, match="at least one admin"):
        revoke_role(after, "m-2", CompanyRole.ADMIN)
    assert revoke_role(after, "m-2", CompanyRole.REPORT_VIEWER) == {"m-2": {CompanyRole.ADMIN}}


def test_certified_headcount_counts_current_employees_holding_each_program_once() -> None:
    employees = {"m-1", "m-3"}
    certs = [
        view("c1", "m-1", "BPI", date(2026, 1, 1)),
        view("c2", "m-1", "BPI", date(2027, 1, 1)),  # the same person twice
        view("c3", "m-3", "BPI", date(2026, 1, 1)),
        view("c4", "m-3", "BDS", date(2026, 1, 1), held=False),  # expired
        view("c5", "m-4", "BDS", date(2026, 1, 1)),  # other company
        view("c6", "m-1", "BCE", None),  # emeritus
    ]
    assert certified_headcount(employees, certs) == {"BCE": 1, "BPI": 2}


def test_expiring_within_n_days_includes_both_ends() -> None:
    employees = {"m-1"}
    certs = [
        view("today", "m-1", "BPI", ON),
        view("edge", "m-1", "BDS", ON + timedelta(days=90)),
        view("beyond", "m-1", "BTS", ON + timedelta(days=91)),
        view("past", "m-1", "BPT", ON - timedelta(days=1)),
        view("emeritus", "m-1", "BCE", None),
    ]
    assert [c.certification_id for c in expiring_within(employees, certs, ON, 90)] == ["today", "edge"]


def test_training_spend_in_a_period_and_currency() -> None:
    new_york = timezone(timedelta(hours=-5))
    entries = [
        SpendEntry("o1", 1_000, "USD", datetime(2025, 1, 1, 0, 0, tzinfo=UTC)),
        SpendEntry("o2", 2_000, "USD", datetime(2024, 12, 31, 20, 0, tzinfo=new_york)),  # 01:00 UTC 1 Jan
        SpendEntry("o3", 4_000, "USD", datetime(2024, 12, 31, 23, 59, tzinfo=UTC)),
        SpendEntry("o4", 8_000, "EUR", datetime(2025, 2, 1, tzinfo=UTC)),
        SpendEntry("o5", 16_000, "USD", datetime(2026, 1, 1, tzinfo=UTC)),
    ]
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    assert training_spend(entries, start, end, "USD") == 3_000


def test_rollup_and_when_it_changed() -> None:
    certs = [view("c1", "m-1", "BPI", ON + timedelta(days=30)), view("c2", "m-4", "BPI", ON)]
    spend = [SpendEntry("o1", 19_500, "USD", datetime(2025, 6, 1, 23, 0, tzinfo=UTC))]
    rollup = compute_rollup("co-1", LINKS, certs, spend, ON)
    assert (rollup.employee_count, rollup.certified_headcount) == (2, {"BPI": 1})
    assert (rollup.expiring_within_days, rollup.expiring_count, rollup.training_spend_cents) == (90, 1, 19_500)
    assert rollup.differs_from(None)
    assert not rollup.differs_from(compute_rollup("co-1", LINKS, certs, spend, ON))
    assert rollup.differs_from(compute_rollup("co-1", LINKS, certs, spend, ON, expiring_days=10))
    assert compute_rollup("co-1", LINKS, certs, spend, date(2026, 1, 1)).training_spend_cents == 0


# --- joining again, invitations ------------------------------------------------------------------------


def test_joining_again_the_day_one_left_reopens_that_days_empty_period() -> None:
    from scte.services.companies.domain import start_employment

    day = date(2026, 3, 10)
    left_today = Employment("m1", "acme", day, day)
    assert start_employment([left_today], day) == left_today
    earlier = Employment("m1", "acme", date(2025, 1, 1), day)
    assert start_employment([earlier], day) is None  # [2025-01-01, day) then [day, ...): no overlap
    assert start_employment([earlier, left_today], day) == left_today


def test_a_new_employment_may_not_overlap_an_earlier_one_or_a_current_one() -> None:
    from scte.services.companies.domain import start_employment

    earlier = Employment("m1", "acme", date(2025, 1, 1), date(2025, 12, 31))
    with pytest.raises(CompaniesError, match="overlaps"):
        start_employment([earlier], date(2025, 6, 1))
    with pytest.raises(CompaniesError, match="overlaps"):
        start_employment([earlier], date(2025, 1, 1))
    with pytest.raises(CompaniesError, match="overlaps"):
        start_employment([earlier], date(2024, 1, 1))  # open-ended from before it
    with pytest.raises(CompaniesError, match="already works"):
        start_employment([Employment("m1", "acme", date(2025, 1, 1))], date(2026, 1, 1))


def test_an_invitation_is_answered_once_by_its_invitee_before_it_expires() -> None:
    from scte.services.companies.domain import Invitation, InvitationStatus

    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    by_id = Invitation("i1", "acme", "m1", None, InvitationStatus.PENDING, now + timedelta(days=14))
    assert by_id.addressed_to("m1", None) and not by_id.addressed_to("m2", None)
    by_address = Invitation("i2", "acme", None, "ada@example.com", InvitationStatus.PENDING, now + timedelta(days=1))
    assert by_address.addressed_to("m7", "Ada@Example.com") and not by_address.addressed_to("m7", None)
    by_id.answer(now)
    with pytest.raises(CompaniesError, match="expired"):
        by_id.answer(now + timedelta(days=14))
    answered = Invitation("i1", "acme", "m1", None, InvitationStatus.REFUSED, now + timedelta(days=14))
    with pytest.raises(CompaniesError, match="refused"):
        answered.answer(now)
    assert by_id.is_open(now) and not answered.is_open(now)
