"""The console's mail viewer in Chromium against a real `scte up`: staff list the mail the platform sent
with its flow and read one, its text and its HTML (in a sandboxed frame, hostile HTML inert); it works
without JavaScript; members and anonymous visitors are refused on the pages and on the mailbox API."""

from __future__ import annotations

import re
import smtplib
import time
import uuid
from email.message import EmailMessage

import httpx
from playwright.sync_api import expect
from tests.browser.test_console import staff_console
from tests.harness.browser import Browsing
from tests.harness.people import new_person, register, staff_person
from tests.harness.platform import Platform

HOSTILE = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>"


def wait_for_mail(platform: Platform, to: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not platform.mails(to):
        assert time.monotonic() < deadline, f"no mail to {to} within {timeout} s"
        time.sleep(0.5)


def send_hostile_mail(platform: Platform, to: str) -> str:
    """A mail from elsewhere to the local mail server, its parts holding script and markup; its subject."""
    port = int(platform.registry()["children"]["mail"]["port"])
    subject = f"Hostile {uuid.uuid4().hex[:6]} {HOSTILE}"
    mail = EmailMessage()
    mail["From"] = "someone@elsewhere.example"
    mail["To"] = to
    mail["Subject"] = subject
    mail.set_content(f"text part {HOSTILE}")
    mail.add_alternative(f"<p id='inside'>html part</p>{HOSTILE}<a href='javascript:alert(1)'>x</a>", subtype="html")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.send_message(mail)
    return subject


def test_staff_read_the_welcome_mail_text_and_html(site: Browsing, platform: Platform) -> None:
    person = new_person()
    register(site.new_page(), person)
    wait_for_mail(platform, person.email)

    page = staff_console(site, platform)
    page.goto("/console")
    page.get_by_role("link", name="Mail sent").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mail sent")
    page.get_by_label("Sent to").fill(person.email)
    page.get_by_role("button", name="Show").click()
    row = page.locator("#mail-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(person.email)
    expect(row.locator('[data-field="flow"]')).to_have_text("member.registered.v1 → welcome")
    site.check_accessibility(page)
    site.shoot(page, "console-mail")

    row.get_by_role("link").click()
    expect(page.locator("#mail-subject")).to_contain_text("Welcome to SCTE")
    expect(page.locator('[data-field="to"]')).to_have_text(person.email)
    expect(page.locator('[data-field="notice"]')).to_have_text("welcome")
    expect(page.locator('[data-field="correlation-id"]')).to_have_text(re.compile(r"\S+"))
    expect(page.locator("#mail-text")).to_contain_text(person.display_name)
    frame = page.locator("#mail-html")
    assert frame.get_attribute("sandbox") == ""
    expect(page.frame_locator("#mail-html").locator("body")).to_contain_text(person.display_name)
    site.check_accessibility(page)
    site.shoot(page, "console-mail-message")


def test_a_hostile_mail_is_shown_inert(site: Browsing, platform: Platform) -> None:
    to = f"target-{uuid.uuid4().hex[:8]}@browser.example"
    subject = send_hostile_mail(platform, to)
    wait_for_mail(platform, to)
    page = staff_console(site, platform)
    page.goto(f"/console/mail?to={to}")
    row = page.locator("#mail-table tbody tr")
    expect(row.get_by_role("link")).to_have_text(subject)  # as text
    expect(row.locator('[data-field="flow"]')).to_have_text("(not a notice)")  # not sent by the platform's notices
    row.get_by_role("link").click()
    expect(page.locator("#mail-subject")).to_have_text(subject)
    expect(page.locator("#mail-text")).to_contain_text(f"text part {HOSTILE}")
    page.locator("summary", has_text="HTML source").click()
    expect(page.locator("#mail-html-source")).to_contain_text(HOSTILE)
    inside = page.frame_locator("#mail-html")
    expect(inside.locator("#inside")).to_have_text("html part")  # the HTML is rendered, in the frame
    time.sleep(0.5)  # an onerror handler would have run by now
    assert page.evaluate("() => window.__pwned") is None
    frame = next(f for f in page.frames if f != page.main_frame)
    assert frame.evaluate("() => window.__pwned === undefined")  # scripts do not run in the sandbox either
    assert page.locator("main script, main img").count() == 0  # nothing of the mail became markup of the page
    site.check_accessibility(page)


def test_the_mail_viewer_works_without_javascript(site: Browsing, platform: Platform) -> None:
    to = f"plain-{uuid.uuid4().hex[:8]}@browser.example"
    subject = send_hostile_mail(platform, to)
    wait_for_mail(platform, to)
    page = staff_console(site, platform, javascript=False)
    page.goto("/console/mail")
    page.get_by_label("Sent to").fill(to)
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name=subject).click()
    expect(page.locator("#mail-text")).to_contain_text("text part")
    expect(page.frame_locator("#mail-html").locator("#inside")).to_have_text("html part")


def test_bad_input_on_the_mail_pages(site: Browsing, platform: Platform) -> None:
    page = staff_console(site, platform)
    for path in ("/console/mail/0", "/console/mail/abc", "/console/mail/99999999", "/console/mail/1234567890123"):
        response = page.goto(path)
        assert response is not None and response.status == 404, path
    response = page.goto("/console/mail?to=a%20b")
    assert response is not None and response.status == 400
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter an e-mail address")
    response = page.goto("/console/mail?before=abc")  # ignored: the first page
    assert response is not None and response.status == 200


def test_members_and_anonymous_are_refused_the_mail_viewer_and_the_mailbox_api(
    site: Browsing, platform: Platform
) -> None:
    paths = ("/console/mail", "/console/mail/1")
    anonymous = site.new_page()
    for path in paths:
        anonymous.goto(path)
        expect(anonymous).to_have_url(re.compile(r"/sign-in\?next="))
    member = site.new_page()
    person = new_person()
    register(member, person)
    for path in paths:
        response = member.goto(path)
        assert response is not None and response.status == 403, path
        expect(member.get_by_role("heading", level=1)).to_have_text("You cannot open this page")

    # The API behind the pages, through the gateway's open /api proxy: staff only as well.
    with httpx.Client(base_url=platform.url, timeout=30) as api:
        for path in ("/api/notifications/mailbox", "/api/notifications/mailbox/1"):
            assert api.get(path).status_code == 401, path
        me = api.post("/api/members/sessions", json={"email": person.email, "password": person.password}).json()
        member_auth = {"Authorization": f"Bearer {me['access_token']}"}
        for path in ("/api/notifications/mailbox", "/api/notifications/mailbox/1"):
            refused = api.get(path, headers=member_auth)
            assert refused.status_code == 403 and refused.json()["error"] == "forbidden", path
        staff = staff_person(platform)
        token = api.post("/api/members/sessions", json={"email": staff.email, "password": staff.password}).json()
        listed = api.get("/api/notifications/mailbox", headers={"Authorization": f"Bearer {token['access_token']}"})
        assert listed.status_code == 200 and listed.json()["messages"]
