"""The member portal in Chromium: registration, sign-in and out, dues paid with the card form, and
the site's guards (CSRF, escaping, sign-in redirects, role pages), against a real `scte up`."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from tests.harness.browser import Browsing
from tests.harness.people import (
    DECLINED_CARD,
    GOOD_CARD,
    eventually_on_page,
    new_person,
    pay_by_card,
    register,
    sign_in,
    sign_out,
)

pytestmark = pytest.mark.xdist_group("browser")  # one worker, one `scte up` (with `--dist loadgroup`)

PRIVATE_PAGES = ["/account", "/orders", "/company", "/staff"]


def test_a_member_registers_pays_dues_signs_out_and_back_in(site: Browsing) -> None:
    page = site.new_page()
    page.goto("/")
    site.check_accessibility(page)
    site.shoot(page, "home")
    person = new_person()
    register(page, person)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {person.display_name}")
    site.check_accessibility(page)

    page.get_by_role("button", name="Pay dues for a year").click()
    expect(page).to_have_url(re.compile(r"/orders/[^/]+/pay$"))
    site.check_accessibility(page)
    site.shoot(page, "pay")
    pay_by_card(page, {**GOOD_CARD, "number": DECLINED_CARD})
    expect(page.locator("#number-error")).to_contain_text("declined")
    site.check_accessibility(page)  # the page with its error summary
    pay_by_card(page)
    expect(page).to_have_url(re.compile(r"/account\?notice=paid$"))

    # order.paid reaches members, which renews the membership: the dashboard shows it a moment later.
    eventually_on_page(
        page, lambda p: p.locator("#member-status").inner_text().strip() != "prospect", what="membership after dues"
    )
    expect(page.locator("#membership")).not_to_contain_text("No dues paid yet")
    site.shoot(page, "account")

    sign_out(page)
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/account$"))
    sign_in(page, person.email, person.password)
    expect(page).to_have_url(re.compile(r"/account$"))


def test_session_cookies_are_httponly_and_samesite(site: Browsing) -> None:
    page = site.new_page()
    register(page, new_person())
    cookies = {c["name"]: c for c in page.context.cookies()}
    for name in ("scte_session", "scte_csrf"):
        assert cookies[name]["httpOnly"] is True, name
        assert cookies[name]["sameSite"] == "Lax", name
    assert page.evaluate("() => document.cookie") == ""


def test_a_signed_out_visitor_lands_on_sign_in_and_comes_back(site: Browsing) -> None:
    person = new_person()
    register(site.new_page(), person)
    for path in PRIVATE_PAGES:
        page = site.new_page()
        page.goto(path + "?tab=1")
        expect(page).to_have_url(re.compile(r"/sign-in\?next="))
        sign_in(page, person.email, person.password)
        if path in ("/company", "/staff"):  # a member is not staff nor a company admin: told so, not sent away
            expect(page).to_have_url(re.compile(re.escape(path) + r"\?tab=1$"))
            expect(page.get_by_role("heading", level=1)).to_have_text("You cannot open this page")
        else:
            expect(page).to_have_url(re.compile(re.escape(path) + r"\?tab=1$"))


def test_sign_in_never_sends_the_visitor_to_another_site(site: Browsing) -> None:
    person = new_person()
    register(site.new_page(), person)
    page = site.new_page()
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        page.goto("/sign-in?next=" + target)
        sign_in(page, person.email, person.password)
        expect(page).to_have_url(re.compile(r"/account$"))
        sign_out(page)


def test_a_form_posted_without_its_csrf_token_is_refused(site: Browsing) -> None:
    page = site.new_page()
    person = new_person()
    register(page, person)
    # The browser's own cookies, but no token field: what another site's hidden form would send.
    refused = page.request.post("/account/dues", form={"x": "1"}, max_redirects=0)
    assert refused.status == 403
    assert "The form has expired" in refused.text()
    wrong = page.request.post("/sign-out", form={"csrf_token": "0" * 64}, max_redirects=0)
    assert wrong.status == 403
    page.goto("/orders")
    expect(page.locator("main")).to_contain_text("No orders yet")  # nothing was ordered
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()  # and still signed in


def test_forms_show_each_fields_error_never_a_500(site: Browsing) -> None:
    page = site.new_page()
    page.goto("/register")
    page.get_by_role("button", name="Create account").click()
    for field in ("email", "display_name", "password"):
        expect(page.locator(f"#{field}-error")).to_be_visible()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    site.check_accessibility(page)
    site.shoot(page, "register-errors")

    page.get_by_label("Email address").fill("not an address")
    page.get_by_label("Your name").fill("Someone")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".govuk-error-summary")).to_be_visible()
    assert page.locator(".govuk-error-message").count() >= 1

    person = new_person()
    page.get_by_label("Email address").fill(person.email)
    page.get_by_label("Your name").fill(person.display_name)
    page.get_by_label("Password").fill(person.password)
    page.get_by_label("Country code (optional)").fill("Narnia")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#country-error")).to_be_visible()

    page.goto("/sign-in")
    sign_in(page, "nobody@browser.example", "a wrong password for nobody")
    expect(page.locator("#email-error")).to_contain_text("not right")

    register(page, person)
    response = page.goto("/orders/no-such-order/pay")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    page.goto("/orders/..%2F..%2Fmembers/pay")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")


def test_a_display_name_with_markup_is_shown_as_text(site: Browsing) -> None:
    page = site.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    person = new_person("<script>alert(1)</script>")
    register(page, person)
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, <script>alert(1)</script>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.content()
    assert dialogs == []


def test_the_basic_journey_works_without_javascript(site: Browsing) -> None:
    page = site.new_page(javascript=False)
    person = new_person()
    register(page, person)
    page.get_by_role("button", name="Pay dues for a year").click()
    pay_by_card(page)
    expect(page).to_have_url(re.compile(r"/account\?notice=paid$"))
    sign_out(page)
    sign_in(page, person.email, person.password)
    expect(page).to_have_url(re.compile(r"/account$"))


def test_unknown_pages_are_a_page_not_json(site: Browsing) -> None:
    page = site.new_page()
    response = page.goto("/no/such/page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    site.check_accessibility(page)
    api = page.request.get("/api/members/no-such-route")
    assert api.status == 404 and api.headers["content-type"].startswith("application/json")


def test_the_services_api_pages_work_offline(site: Browsing, platform: object) -> None:
    page: Page = site.new_page()
    origin = site.url
    outside: list[str] = []

    def only_this_origin(route: object) -> None:
        request = route.request  # type: ignore[attr-defined]
        if request.url.startswith(origin):
            route.continue_()  # type: ignore[attr-defined]
        else:
            outside.append(request.url)
            route.abort()  # type: ignore[attr-defined]

    page.route("**/*", only_this_origin)
    page.goto("/api/members/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("SCTE members")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert outside == []
    page.goto("/")
    expect(page.locator("footer")).to_be_visible()
    assert outside == []
