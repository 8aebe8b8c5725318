"""The issue's journeys, each entirely through the pages of a real `scte up` in Chromium: the member's
exam to certification, courses filling the units bar up to renewal, the gallery, a company's
invitation, purchase order and invoice, and staff's roles and reports. Staff act in their own browser."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from tests.harness.browser import Browsing
from tests.harness.people import (
    Person,
    buy_and_pay,
    eventually_on_page,
    new_person,
    open_staff_member_page,
    record_exam_pass,
    register,
    sign_in,
    sign_out,
    sit_and_pass_exam,
    staff_person,
)
from tests.harness.platform import Platform

pytestmark = pytest.mark.xdist_group("browser")  # one worker, one `scte up` (with `--dist loadgroup`)

THREE_YEARS_LESS_FOUR_MONTHS = (3 * 365 - 120) * 86400.0


def staff_page(site: Browsing, platform: Platform) -> Page:
    page = site.new_page()
    staff = staff_person(platform)
    sign_in(page, staff.email, staff.password)
    expect(page).to_have_url(re.compile(r"/account$"))
    return page


def _checked(site: Browsing) -> Callable[[Page], None]:
    def check(page: Page) -> None:
        site.check_accessibility(page)
        page.evaluate("window.scrollTo(0, 0)")  # the paper's heading and first questions
        site.shoot(page, "exam-paper")

    return check


def certified(
    site: Browsing, staff: Page, person: Person, program: str = "BPI", *, sat_online: bool = True, check: bool = False
) -> Page:
    """A registered member with dues paid and `program`'s exam passed (sat from the portal, or recorded by
    staff as the test centre does); their page on /account."""
    page = site.new_page()
    register(page, person, listed=True, city="Exeter")
    buy_and_pay(page, "/account", "Pay dues for a year")
    buy_and_pay(page, "/exams", f"Buy the {program} exam")
    if sat_online:
        sit_and_pass_exam(page, staff, program, _checked(site) if check else None)
    else:
        record_exam_pass(staff, person, program)
    page.goto("/account")
    eventually_on_page(page, lambda p: p.locator(f"#cert-{program}").count() > 0, what=f"{program} certification")
    return page


def test_a_member_passes_an_exam_and_is_certified_mailed_and_found(site: Browsing, platform: Platform) -> None:
    staff = staff_page(site, platform)
    person = new_person(f"Ada Exam{uuid.uuid4().hex[:6]}")
    page = certified(site, staff, person, check=True)
    site.check_accessibility(staff)  # the paper with its key, on staff's side
    card = page.locator("#cert-BPI")
    expect(card).to_contain_text("Broadband Premises Installer")
    expect(card).to_contain_text("active")
    expect(card.locator("progress")).to_have_attribute("max", "12")
    site.check_accessibility(page)
    site.shoot(page, "account-certified")

    page.goto("/inbox")
    eventually_on_page(
        page, lambda p: "Congratulations on your BPI certification" in p.locator("main").inner_text(), what="the mail"
    )
    site.check_accessibility(page)
    site.shoot(page, "inbox")
    page.get_by_role("link", name="Congratulations on your BPI certification").click()
    expect(page.locator("#notice-text")).to_contain_text("You are now certified as Broadband Premises Installer (BPI)")
    expect(page.locator("#notice-text")).to_contain_text(f"Hello {person.display_name}")
    site.check_accessibility(page)

    page.goto("/transcript")
    expect(page.locator("main")).to_contain_text("BPI: 100")

    surname = person.display_name.split()[1]
    page.goto(f"/search?q=program:BPI+{surname}")
    eventually_on_page(page, lambda p: p.locator("#results-member").count() > 0, what="the member in search")
    expect(page.locator("#results-member")).to_contain_text(person.display_name)
    site.check_accessibility(page)
    site.shoot(page, "search")

    # the attempt is spent: the paper is not shown again, and a member never sees the key
    spent = page.goto("/exams/BPI/sit")
    assert spent is not None and spent.status == 400  # the site answers refusals other than 401-404 as 400
    expect(page.locator("main")).to_contain_text("pay the BPI exam fee first")
    refused = page.goto("/staff/exams/BPI")
    assert refused is not None and refused.status == 403


def test_courses_fill_the_units_bar_until_renewal_is_possible(site: Browsing, platform: Platform) -> None:
    staff = staff_page(site, platform)
    person = new_person(f"Cora Course{uuid.uuid4().hex[:6]}")
    page = certified(site, staff, person, sat_online=False)
    start = int(page.locator("#units-BPI").get_attribute("value") or "0")  # paid dues count a unit
    assert start < 6
    plan = [(1, 6, start + 6), (2, 12 - start - 6, 12)]  # course, its units, the bar after it

    code = f"WEB-{uuid.uuid4().hex[:6].upper()}"
    staff.goto("/staff/courses")
    for n, units, _ in plan:
        staff.get_by_label("Course code").fill(f"{code}-{n}")
        staff.get_by_label("Title").fill(f"Fibre splicing part {n} {code}")
        staff.get_by_label("Recertification units").fill(str(units))
        staff.get_by_role("button", name="Save course").click()
        expect(staff).to_have_url(re.compile(r"notice=course$"))

    page.goto("/courses")
    site.check_accessibility(page)
    site.shoot(page, "courses")
    # The renewal window opens six months before the cycle's end: the platform's clock moves there.
    platform.set_clock_offset(THREE_YEARS_LESS_FOUR_MONTHS)
    try:
        for n, _, after in plan:
            expected = str(after)
            buy_and_pay(page, "/courses", f"Enrol in Fibre splicing part {n} {code}")
            open_staff_member_page(staff, person)
            staff.get_by_label("Course").select_option(value=f"{code}-{n}")
            staff.get_by_role("button", name="Record completion").click()
            expect(staff).to_have_url(re.compile(r"notice=completed$"))
            page.goto("/account")
            eventually_on_page(
                page,
                lambda p, e=expected: p.locator("#units-BPI").get_attribute("value") == e,  # type: ignore[misc]
                what=f"{expected} units on the bar",
            )
        eventually_on_page(page, lambda p: p.locator("#renewal-BPI").count() > 0, what="renewal offered")
        expect(page.locator("#renewal-BPI")).to_contain_text("You can renew this certification now")
        site.check_accessibility(page)
        site.shoot(page, "account-renewal")
        page.goto("/inbox")
        eventually_on_page(
            page, lambda p: "You can renew your BPI certification" in p.locator("main").inner_text(), what="the mail"
        )
    finally:
        platform.set_clock_offset(0)


def test_a_member_uploads_an_image_and_finds_its_thumbnail(site: Browsing, tmp_path: Path) -> None:
    page = site.new_page()
    register(page, new_person())
    word = f"splice{uuid.uuid4().hex[:8]}"
    image = tmp_path / "enclosure.png"
    Image.new("RGB", (640, 480), (30, 120, 200)).save(image)
    page.goto("/gallery")
    page.get_by_role("button", name="Upload").click()  # nothing chosen: the field's error
    expect(page.locator("#file-error")).to_be_visible()
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    page.get_by_label("Image or PDF").set_input_files(str(bad))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#file-error")).to_be_visible()

    page.get_by_label("Title").fill(f"Enclosure {word}")
    page.get_by_label("Image or PDF").set_input_files(str(image))
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/gallery\?notice=uploaded$"))
    eventually_on_page(page, lambda p: p.locator("#gallery img").count() == 1, what="the thumbnail")
    thumb = page.locator("#gallery img")
    expect(thumb).to_have_attribute("alt", f"Enclosure {word}")
    assert page.evaluate("img => img.complete && img.naturalWidth", thumb.element_handle()) == 160
    site.check_accessibility(page)
    site.shoot(page, "gallery")

    page.goto(f"/search?q={word}")
    eventually_on_page(page, lambda p: p.locator("#results-media img").count() == 1, what="the upload in search")
    found = page.locator("#results-media img")
    assert page.evaluate("img => img.complete && img.naturalWidth", found.element_handle()) > 0


def test_a_company_admin_invites_a_member_and_sees_the_po_on_the_invoice(site: Browsing, platform: Platform) -> None:
    staff = staff_page(site, platform)
    admin, employee = new_person(f"Ann Admin{uuid.uuid4().hex[:6]}"), new_person(f"Eve Employee{uuid.uuid4().hex[:6]}")
    admin_page = site.new_page()
    register(admin_page, admin)
    employee_page = certified(site, staff, employee)

    number = open_staff_member_page(staff, admin)
    company = f"Cable Co {uuid.uuid4().hex[:6]}"
    staff.goto("/staff/companies")
    staff.get_by_label("Company name").fill(company)
    staff.get_by_label("Administrator's member number (optional)").fill(number)
    staff.get_by_role("button", name="Add company").click()
    expect(staff).to_have_url(re.compile(r"notice=company$"))

    # The admin role reaches the admin's account by a message; it is in the next sign-in's token.
    def company_page_opens(p: Page) -> bool:
        sign_out(p)
        sign_in(p, admin.email, admin.password)
        p.goto("/company")
        return p.get_by_role("heading", level=1).inner_text() == company

    eventually_on_page(admin_page, company_page_opens, what="the company admin's page")
    admin_page.get_by_label("Member's email address").fill("not-an-address")
    admin_page.get_by_role("button", name="Send invitation").click()
    expect(admin_page.locator("#email-error")).to_be_visible()
    admin_page.get_by_label("Member's email address").fill(employee.email)
    admin_page.get_by_role("button", name="Send invitation").click()
    expect(admin_page).to_have_url(re.compile(r"notice=invited$"))

    employee_page.goto("/invitations")
    eventually_on_page(employee_page, lambda p: p.get_by_text(company).count() > 0, what="the invitation")
    site.check_accessibility(employee_page)
    site.shoot(employee_page, "invitations")
    employee_page.get_by_role("button", name=f"Accept {company}'s invitation").click()
    expect(employee_page).to_have_url(re.compile(r"notice=accepted$"))

    admin_page.goto("/company")
    eventually_on_page(
        admin_page,
        lambda p: (  # the admin and the employee; the employee's BPI certification in the headcount
            p.locator("#employee-count").inner_text().strip() == "2"
            and "BPI: 1" in p.locator("#certified-headcount").inner_text()
        ),
        what="the rollup counting the employee",
    )
    expect(admin_page.locator("#employees")).to_contain_text(employee.display_name)
    site.check_accessibility(admin_page)
    site.shoot(admin_page, "company")

    admin_page.goto("/company/orders")
    po = f"PO-{uuid.uuid4().hex[:6]}"
    admin_page.get_by_label("Purchase order number").fill(po)
    admin_page.get_by_label("Limit in dollars").fill("lots")
    admin_page.get_by_role("button", name="Open purchase order").click()
    expect(admin_page.locator("#limit-error")).to_be_visible()
    admin_page.get_by_label("Limit in dollars").fill("5000")
    admin_page.get_by_role("button", name="Open purchase order").click()
    expect(admin_page).to_have_url(re.compile(r"notice=po$"))
    admin_page.get_by_label("Course", exact=True).select_option(index=1)
    admin_page.get_by_label("Employee").select_option(label=employee.display_name)
    admin_page.get_by_label("Charge to").select_option(index=1)
    admin_page.get_by_role("button", name="Buy seat").click()
    expect(admin_page).to_have_url(re.compile(r"notice=charged$"))

    month = datetime.now(UTC).strftime("%Y-%m")
    staff.goto("/staff/reports")
    staff.get_by_label("Month").fill(month)
    staff.get_by_role("button", name="Issue invoices").click()
    expect(staff.locator("#month-error")).to_contain_text("can be issued from")  # the month is not over
    now = datetime.now(UTC)
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(day=2, hour=0, minute=0, second=0, microsecond=0)
    platform.set_clock_offset((next_month - now).total_seconds())
    try:
        staff.get_by_label("Month").fill(month)
        staff.get_by_role("button", name="Issue invoices").click()
        expect(staff).to_have_url(re.compile(r"notice=invoices$"))
    finally:
        platform.set_clock_offset(0)
    admin_page.goto("/company/orders")
    eventually_on_page(admin_page, lambda p: p.locator(f"#invoice-{month}").count() > 0, what="the invoice")
    expect(admin_page.locator(f"#invoice-{month}")).to_contain_text(f"Purchase order {po}")
    site.check_accessibility(admin_page)
    site.shoot(admin_page, "company-orders")


def test_staff_change_a_members_role_and_download_a_report(site: Browsing, platform: Platform) -> None:
    staff = staff_page(site, platform)
    staff.goto("/staff")
    site.check_accessibility(staff)
    site.shoot(staff, "staff")
    person = new_person(f"Rita Role{uuid.uuid4().hex[:6]}")
    page = site.new_page()
    register(page, person)
    page.goto("/staff")
    expect(page.get_by_role("heading", level=1)).to_have_text("You cannot open this page")

    open_staff_member_page(staff, person)
    site.check_accessibility(staff)
    staff.get_by_role("checkbox", name="Staff").check()
    staff.get_by_role("button", name="Save roles").click()
    expect(staff).to_have_url(re.compile(r"notice=role$"))
    expect(staff.locator("#member-roles")).to_have_text("member, staff")

    sign_out(page)
    sign_in(page, person.email, person.password)
    page.goto("/staff")
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")

    staff.goto("/staff/reports")
    site.check_accessibility(staff)
    with staff.expect_download() as download_info:
        staff.get_by_role("link", name="Download CSV of members by status").click()
    download = download_info.value
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rows) >= 2 and rows[0], rows
    staff.get_by_role("button", name="Make a file of members by status").click()
    expect(staff.locator("#report-run")).to_be_visible()
    with staff.expect_download() as run_info:
        staff.locator("#report-run a").click()
    assert Path(run_info.value.path()).read_text(encoding="utf-8").splitlines()[0] == ",".join(rows[0])
