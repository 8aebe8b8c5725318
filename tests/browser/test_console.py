"""The operations console in Chromium against a real `scte up`: staff see the queues, find a dead letter,
read why it failed, redrive it and see it processed; purge asks first; everyone else is refused.

A dead letter is made as the notifications consumer makes one after its handler failed: the event's
envelope with the failure record (`scte-dead-letter`), sent to `notifications-dlq` with the install's
admin key (the broker runs SigV4 strict). Its event is a real `member.registered.v1`, so once redriven
the notifications service handles it and mails the welcome: the proof it was processed.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
from playwright.sync_api import Page, expect
from tests.harness.browser import Browsing
from tests.harness.people import new_person, register, sign_in, staff_person
from tests.harness.platform import Platform

from scte.bus.consumer import DEAD_LETTER_ATTRIBUTE
from scte.bus.envelope import encode
from scte.contracts.members import MemberRegistered

DLQ = "notifications-dlq"
CONSOLE_PAGES = ("/console", "/console/live", "/console/map", f"/console/queues/{DLQ}", f"/console/queues/{DLQ}/purge")


def _sqs(platform: Platform) -> Any:
    key = json.loads((platform.data_dir / "keys" / "broker" / "admin.json").read_text(encoding="utf-8"))
    endpoint = platform.registry()["env"]["AWS_ENDPOINT_URL"]
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["aws_access_key_id"],
        aws_secret_access_key=key["aws_secret_access_key"],
    )


def make_dead_letter(platform: Platform, email: str, display_name: str, error: str = "boom") -> tuple[str, str]:
    """A `member.registered.v1` for `email` in the notifications DLQ as its consumer leaves one after the
    handler failed 5 times; (message id, correlation id)."""
    event = MemberRegistered(
        member_id=uuid.uuid4().hex, email=email, display_name=display_name, registered_at=datetime.now(UTC)
    )
    envelope, message = encode(event, source="members")
    failure = {
        "reason": "handler-error",
        "error_type": "RuntimeError",
        "error": error,
        "traceback_digest": "0123456789abcdef",
        "consumer": "notifications",
        "queue": "notifications",
        "receive_count": 5,
        "failed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    attributes = {**message.attributes, DEAD_LETTER_ATTRIBUTE: json.dumps(failure)}
    sqs = _sqs(platform)
    url = sqs.get_queue_url(QueueName=DLQ)["QueueUrl"]
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody=message.body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    return str(sent["MessageId"]), envelope.correlation_id


def staff_console(site: Browsing, platform: Platform, *, javascript: bool = True) -> Page:
    page = site.new_page(javascript=javascript)
    staff = staff_person(platform)
    sign_in(page, staff.email, staff.password)
    expect(page).to_have_url(re.compile(r"/account$"))
    return page


def wait_for_mail(platform: Platform, to: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not platform.mails(to):
        assert time.monotonic() < deadline, f"no mail to {to} within {timeout} s"
        time.sleep(0.5)


def test_staff_find_a_dead_letter_read_why_redrive_it_and_see_it_processed(site: Browsing, platform: Platform) -> None:
    email = f"dlq-{uuid.uuid4().hex[:10]}@browser.example"
    hostile = "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned = 2'>"
    message_id, correlation_id = make_dead_letter(
        platform, email, f"Dee Letter {hostile}", error=f"handler failed on {hostile}"
    )
    page = staff_console(site, platform)
    page.goto("/console")
    expect(page.get_by_role("heading", name="Operations console")).to_be_visible()
    dlq_row = page.locator(f'#dead-letter-queues tr[data-queue="{DLQ}"]')
    count = int(dlq_row.locator('[data-field="visible"]').inner_text())
    assert count >= 1
    expect(page.locator('#queues tr[data-queue="notifications"]')).to_be_visible()
    expect(page.locator('#services tr[data-service="notifications"]')).to_contain_text("ok")
    expect(page.locator('#topics tr[data-topic="members.fifo"]')).to_contain_text("notifications")
    site.check_accessibility(page)
    site.shoot(page, "console-queues")

    dlq_row.get_by_role("link", name=DLQ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Dead letters of {DLQ}")
    card = page.locator(f'.scte-dead-letter[data-message-id="{message_id}"]')
    expect(card.locator('[data-field="correlation-id"]')).to_have_text(correlation_id)
    expect(card.locator('[data-field="failure-reason"]')).to_have_text("handler-error")
    expect(card.locator('[data-field="attempts"]')).to_have_text("5")
    expect(card.locator('[data-field="source"]')).to_have_text("members")
    expect(card.get_by_role("heading", level=2)).to_have_text("member.registered.v1")
    # The hostile strings are shown as text, never run.
    expect(card.locator('[data-field="error"]')).to_have_text(f"handler failed on {hostile}")
    card.locator("summary").click()
    expect(card.locator(".scte-message-body")).to_contain_text("<script>window.__pwned = 1</script>")
    assert page.evaluate("() => window.__pwned") is None
    assert card.locator("script").count() == 0 and card.locator("img").count() == 0
    site.check_accessibility(page)
    site.shoot(page, "console-dead-letters")

    card.get_by_role("button", name=f"Redrive message {message_id}").click()
    expect(page).to_have_url(re.compile(r"notice=redriven&moved=1$"))
    expect(page.locator("#moved")).to_have_text("1 message moved back.")
    expect(page.locator(f'.scte-dead-letter[data-message-id="{message_id}"]')).to_have_count(0)
    wait_for_mail(platform, email)  # the notifications service handled it this time


def test_the_queues_page_works_without_javascript_and_updates_live_with_it(site: Browsing, platform: Platform) -> None:
    plain = staff_console(site, platform, javascript=False)
    plain.goto("/console")
    expect(plain.locator('#queues tr[data-queue="notifications"] [data-field="visible"]')).to_have_text(
        re.compile(r"^\d+$")
    )
    expect(plain.locator(f'#dead-letter-queues tr[data-queue="{DLQ}"]')).to_be_visible()

    live = staff_console(site, platform)
    live.goto("/console")
    cell = live.locator(f'#dead-letter-queues tr[data-queue="{DLQ}"] [data-field="visible"]')
    before = int(cell.inner_text())
    make_dead_letter(platform, f"live-{uuid.uuid4().hex[:8]}@browser.example", "Live Update")
    # htmx reloads the figures (no page load): the new dead letter appears in the count.
    expect(cell).to_have_text(str(before + 1), timeout=30_000)
    assert live.evaluate("() => performance.getEntriesByType('navigation').length") == 1


def test_redrive_a_selection_and_purge_only_after_confirming(site: Browsing, platform: Platform) -> None:
    first, _ = make_dead_letter(platform, f"sel-{uuid.uuid4().hex[:8]}@browser.example", "Sel One")
    second, _ = make_dead_letter(platform, f"sel-{uuid.uuid4().hex[:8]}@browser.example", "Sel Two")
    page = staff_console(site, platform)
    page.goto(f"/console/queues/{DLQ}")
    page.get_by_role("button", name="Redrive selected messages").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Select at least one message")
    page.get_by_label(f"Select message {first}").check()
    page.get_by_label(f"Select message {second}").check()
    page.get_by_role("button", name="Redrive selected messages").click()
    expect(page.locator("#moved")).to_have_text("2 messages moved back.")

    make_dead_letter(platform, f"purge-{uuid.uuid4().hex[:8]}@browser.example", "To Purge")
    page.goto(f"/console/queues/{DLQ}")
    page.get_by_role("link", name="Purge this queue").click()
    page.get_by_role("button", name="Purge the queue").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Tick the box")
    site.check_accessibility(page)
    page.get_by_label(f"Yes, delete every message of {DLQ}").check()
    page.get_by_role("button", name="Purge the queue").click()
    expect(page).to_have_url(re.compile(r"notice=purged$"))
    expect(page.locator("#dlq-count")).to_have_text("0 messages shown.")


def test_the_console_is_for_staff_only(site: Browsing, platform: Platform) -> None:
    anonymous = site.new_page()
    for path in CONSOLE_PAGES:
        anonymous.goto(path)
        expect(anonymous).to_have_url(re.compile(r"/sign-in\?next="))

    member = site.new_page()
    person = new_person()
    register(member, person)
    for path in CONSOLE_PAGES:
        response = member.goto(path)
        assert response is not None and response.status == 403, path
        expect(member.get_by_role("heading", level=1)).to_have_text("You cannot open this page")
    # Forms too: a member's own valid CSRF token does not make a redrive or a purge theirs.
    member.goto("/account")
    token = member.locator('input[name="csrf_token"]').first.get_attribute("value")
    for action in ("redrive", "purge"):
        answer = member.request.post(
            f"/console/queues/{DLQ}/{action}", form={"csrf_token": token or "", "all": "yes", "confirm": "yes"}
        )
        assert answer.status == 403, action

    # A company admin is refused as well.
    admin = new_person()
    admin_page = site.new_page()
    register(admin_page, admin)
    with httpx.Client(base_url=platform.url, timeout=30) as api:
        staff = staff_person(platform)
        token_answer = api.post("/api/members/sessions", json={"email": staff.email, "password": staff.password})
        staff_token = token_answer.json()["access_token"]
        me = api.post("/api/members/sessions", json={"email": admin.email, "password": admin.password}).json()
        member_id = api.get("/api/members/me", headers={"Authorization": f"Bearer {me['access_token']}"}).json()["id"]
        created = api.post(
            "/api/companies/companies",
            json={"name": f"Console Co {uuid.uuid4().hex[:6]}", "admin_member_id": member_id},
            headers={"Authorization": f"Bearer {staff_token}"},
        )
        assert created.status_code == 201, created.text
    deadline = time.monotonic() + 120
    while True:  # the role reaches the account by a message; the next sign-in's token carries it
        admin_page.context.clear_cookies()
        sign_in(admin_page, admin.email, admin.password)
        expect(admin_page).to_have_url(re.compile(r"/account"))
        opened = admin_page.goto("/company")
        if opened is not None and opened.status == 200:
            break
        assert time.monotonic() < deadline, "the company admin role never arrived"
        time.sleep(1)
    for path in CONSOLE_PAGES:
        response = admin_page.goto(path)
        assert response is not None and response.status == 403, path


def test_console_forms_refuse_a_missing_csrf_token(site: Browsing, platform: Platform) -> None:
    page = staff_console(site, platform)
    make_dead_letter(platform, f"csrf-{uuid.uuid4().hex[:8]}@browser.example", "Csrf Check")
    for action in ("redrive", "purge"):
        answer = page.request.post(f"/console/queues/{DLQ}/{action}", form={"all": "yes", "confirm": "yes"})
        assert answer.status == 403, action
        assert "The form has expired" in answer.text()
    page.goto(f"/console/queues/{DLQ}")
    assert int(re.sub(r"\D.*", "", page.locator("#dlq-count").inner_text())) >= 1  # nothing was purged
    # A queue that is not a dead-letter queue cannot be browsed, purged nor redriven here.
    assert page.goto("/console/queues/notifications/purge").status == 404  # type: ignore[union-attr]
    assert page.goto("/console/queues/no-such-dlq").status == 404  # type: ignore[union-attr]
    assert page.goto("/console/queues/bad%20name").status == 404  # type: ignore[union-attr]


def test_the_data_flow_map_shows_every_service_topic_and_queue(site: Browsing, platform: Platform) -> None:
    from scte.platform import topology

    page = staff_console(site, platform)
    page.goto("/console")
    page.get_by_role("link", name="Data-flow map").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Data-flow map")
    shape = topology()
    svg = page.locator("#flow-map")
    for topic in shape.topics:
        name = topic.name + (".fifo" if topic.fifo else "")
        expect(svg.locator(f'[data-kind="topic"][data-name="{name}"]')).to_have_count(1)
    for queue in shape.queues:
        name = queue.name + (".fifo" if queue.fifo else "")
        expect(svg.locator(f'[data-kind="queue"][data-name="{name}"]')).to_have_count(1)
        for subscription in queue.subscriptions:
            topic = next(t for t in shape.topics if t.name == subscription.topic)
            source = topic.name + (".fifo" if topic.fifo else "")
            expect(
                svg.locator(f'line[data-kind="deliver"][data-source="{source}"][data-target="{name}"]')
            ).to_have_count(1)
    expect(page.locator("#map-table")).to_contain_text("published")
    site.check_accessibility(page)
    site.shoot(page, "console-map")
