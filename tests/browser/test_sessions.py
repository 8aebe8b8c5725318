"""Sessions in the browser: the access token renewed from the refresh cookie, sign-out ending the
session at the members service, password change, and reset by a mailed link."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect
from tests.harness.browser import Browsing
from tests.harness.people import new_person, register, sign_in, sign_out
from tests.harness.platform import Platform

pytestmark = pytest.mark.xdist_group("browser")  # one worker, one `scte up` (with `--dist loadgroup`)


def test_an_expired_access_token_is_renewed_from_the_refresh_cookie(site: Browsing) -> None:
    page = site.new_page()
    register(page, new_person())
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    # As when the 15-minute access token has expired: the browser holds only the refresh token.
    page.context.clear_cookies(name="scte_session")
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/account$"))
    renewed = {c["name"]: c["value"] for c in page.context.cookies()}
    assert renewed["scte_session"] and renewed["scte_session"] != cookies["scte_session"]
    assert renewed["scte_refresh"] != cookies["scte_refresh"]  # rotated: the old one is used up
    assert renewed["scte_csrf"] == cookies["scte_csrf"]  # the open forms keep working


def test_sign_out_ends_the_session_everywhere(site: Browsing) -> None:
    page = site.new_page()
    register(page, new_person())
    refresh = next(c for c in page.context.cookies() if c["name"] == "scte_refresh")
    sign_out(page)
    # A copy of the refresh cookie taken before the sign-out (another tab, a thief) is worthless now.
    other = site.new_context()
    other.add_cookies([{**refresh}])
    stolen = other.new_page()
    stolen.goto("/account")
    expect(stolen).to_have_url(re.compile(r"/sign-in\?next=/account$"))


def test_a_member_changes_their_password(site: Browsing) -> None:
    page = site.new_page()
    person = new_person()
    register(page, person)
    page.goto("/password")
    site.check_accessibility(page)
    page.get_by_label("Current password").fill("not the password at all")
    page.get_by_label("New password").fill(person.password + " renewed")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_be_visible()
    page.get_by_label("Current password").fill(person.password)
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#new_password-error")).to_be_visible()
    site.check_accessibility(page)

    new_password = person.password + " renewed"
    page.get_by_label("Current password").fill(person.password)
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(re.compile(r"/account\?notice=password$"))
    sign_out(page)
    sign_in(page, person.email, person.password)
    expect(page.locator("#email-error")).to_be_visible()
    sign_in(page, person.email, new_password)
    expect(page).to_have_url(re.compile(r"/account$"))


def test_a_forgotten_password_is_reset_from_the_mailed_link(site: Browsing, platform: Platform) -> None:
    page = site.new_page()
    person = new_person()
    register(page, person)
    sign_out(page)
    page.goto("/sign-in")
    page.get_by_role("link", name="I forgot my password").click()
    site.check_accessibility(page)
    page.get_by_label("Email address").fill(person.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page).to_have_url(re.compile(r"/sign-in\?notice=reset-sent$"))

    link = ""
    deadline = time.monotonic() + 90
    while not link and time.monotonic() < deadline:
        for mail in platform.mails(person.email):
            found = re.search(r"(http://\S+/password-reset\?token=[^\s<\"]+)", mail.body)
            if found:
                link = found.group(1)
        time.sleep(0.5)
    assert link.startswith(platform.url), link
    page.goto(link)
    site.check_accessibility(page)
    new_password = person.password + " reset"
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Set password").click()
    expect(page).to_have_url(re.compile(r"/sign-in\?notice=password-reset$"))
    sign_in(page, person.email, new_password)
    expect(page).to_have_url(re.compile(r"/account$"))
    page.goto(link)  # a link works once
    page.get_by_label("New password").fill(new_password + " again")
    page.get_by_role("button", name="Set password").click()
    expect(page.locator("#new_password-error")).to_be_visible()
