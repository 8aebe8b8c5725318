"""People of the browser tests and the steps they take through the pages (register, sign in, pay).

Every step goes through the pages as a person would: filling the form fields by their labels and
pressing the buttons. Passwords are long random phrases, so any password policy accepts them.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from playwright.sync_api import Page, expect
from tests.harness.platform import Platform

__all__ = [
    "GOOD_CARD",
    "Person",
    "buy_and_pay",
    "eventually_on_page",
    "new_person",
    "open_staff_member_page",
    "pay_by_card",
    "record_exam_pass",
    "register",
    "sign_in",
    "sign_out",
    "staff_person",
]

GOOD_CARD = {"number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2099", "cvc": "123"}
DECLINED_CARD = "4000000000000002"


@dataclass
class Person:
    email: str
    password: str
    display_name: str
    member_id: str = ""


def new_person(display_name: str = "") -> Person:
    tag = uuid.uuid4().hex[:10]
    return Person(
        email=f"web-{tag}@browser.example",
        password=f"{secrets.token_urlsafe(12)} orbit {secrets.token_urlsafe(6)} lantern",
        display_name=display_name or f"Web Tester {tag[:4]}",
    )


def register(page: Page, person: Person, *, listed: bool = False, city: str = "") -> None:
    """Create the account on /register; the browser ends signed in on /account."""
    page.goto("/register")
    page.get_by_label("Email address").fill(person.email)
    page.get_by_label("Your name").fill(person.display_name)
    page.get_by_label("Password").fill(person.password)
    if city:
        page.get_by_label("City (optional)").fill(city)
    if listed:
        page.get_by_label("List me in the member directory").check()
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/account\?notice=registered$"))


def sign_in(page: Page, email: str, password: str) -> None:
    """Fill the sign-in form of the page the browser is on (or open /sign-in first)."""
    if "/sign-in" not in page.url:
        page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/\?notice=signed-out$"))


def pay_by_card(page: Page, card: dict[str, str] | None = None) -> None:
    """Fill the card form the browser is on and pay."""
    card = card or GOOD_CARD
    page.get_by_label("Card number").fill(card["number"])
    page.get_by_label("Month").fill(card["exp_month"])
    page.get_by_label("Year").fill(card["exp_year"])
    page.get_by_label("Security code").fill(card["cvc"])
    page.get_by_role("button", name="Pay now").click()


def eventually_on_page(page: Page, check: Callable[[Page], bool], *, timeout: float = 120.0, what: str = "") -> None:
    """Reload until `check(page)` holds: the pages show what the services know, and the services learn
    from messages a moment after the click."""
    deadline = time.monotonic() + timeout
    while True:
        if check(page):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s on {page.url}: {what}")
        time.sleep(0.5)
        page.reload()


_STAFF: dict[str, Person] = {}


def staff_person(platform: Platform) -> Person:
    """A staff account of the platform, made once per platform with `scte admin create-staff`."""
    key = str(platform.data_dir)
    if key not in _STAFF:
        email = f"web-staff-{uuid.uuid4().hex[:8]}@browser.example"
        _STAFF[key] = Person(email, platform.create_staff(email, "Web Staff"), "Web Staff")
    return _STAFF[key]


def open_staff_member_page(staff: Page, person: Person) -> str:
    """From the staff member list (newest first), the person's page; their member number."""
    staff.goto("/staff")
    staff.get_by_role("link", name=person.display_name, exact=True).first.click()
    expect(staff.get_by_role("heading", level=1)).to_have_text(person.display_name)
    return staff.locator("#member-id").inner_text().strip()


def record_exam_pass(staff: Page, person: Person, exam: str) -> None:
    """Staff record a full-marks result for `exam` on the person's page (as the test centre would)."""
    open_staff_member_page(staff, person)
    option = staff.locator("#exam_id option", has_text=f"{exam}: ")
    label = option.inner_text()
    questions = re.search(r"\((\d+) questions\)", label)
    assert questions, label
    staff.get_by_label("Exam").select_option(value=exam)
    staff.get_by_label("Correct answers").fill(questions.group(1))
    staff.get_by_role("button", name="Record result").click()
    expect(staff).to_have_url(re.compile(r"notice=attempt$"))


def sit_and_pass_exam(page: Page, staff: Page, exam: str, check: Callable[[Page], None] | None = None) -> None:
    """The member sits `exam` from the portal and answers each question right: staff's page of the
    paper (with its key) says which choice is right, as an examiner's answer sheet would."""
    staff.goto(f"/staff/exams/{exam}")
    items = staff.locator("#paper > li")
    right = [items.nth(i).locator("[data-right]").inner_text() for i in range(items.count())]
    right = [text.removesuffix("right answer").strip() for text in right]
    assert right, "the paper has no questions"
    page.goto("/exams")
    page.get_by_role("link", name=f"Sit the {exam} exam now").click()
    for number, answer in enumerate(right, start=1):
        page.locator(f"#question-{number}").get_by_label(answer, exact=True).check()
    if check is not None:  # e.g. the accessibility check, on the paper with its answers chosen
        check(page)
    page.get_by_role("button", name="Hand in the paper").click()
    expect(page).to_have_url(re.compile(r"/exams\?notice=exam-passed$"))


def buy_and_pay(page: Page, path: str, button: str) -> None:
    """Press `button` on `path` (an order is placed) and pay it by card."""
    page.goto(path)
    page.get_by_role("button", name=button).click()
    expect(page).to_have_url(re.compile(r"/orders/[^/]+/pay$"))
    pay_by_card(page)
    expect(page).to_have_url(re.compile(r"/account\?notice=paid$"))
