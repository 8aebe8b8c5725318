"""Replay from a dead-letter queue in Chromium against a real `scte up`: staff open a dead letter, are told
what a replay does (its topic, the queues subscribed, why it is harmless twice), must tick the box, and
the event is published again to its topic: the consumer that failed handles it (the welcome mail
arrives). The same event dead-lettered and replayed again changes nothing twice (one mail). Members,
anonymous visitors and a form without the CSRF token are refused."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime

from playwright.sync_api import expect
from tests.browser.test_console import DLQ, _sqs, staff_console
from tests.harness.browser import Browsing
from tests.harness.people import new_person, register
from tests.harness.platform import Platform

from scte.bus.consumer import DEAD_LETTER_ATTRIBUTE
from scte.bus.envelope import encode
from scte.contracts.members import MemberRegistered


def dead_letter_of(platform: Platform, event: MemberRegistered, event_id: str) -> str:
    """The event (with that event id) in the notifications DLQ as its consumer leaves one; its message id."""
    _, message = encode(event, source="members", id=event_id)
    failure = {"reason": "handler-error", "error_type": "RuntimeError", "error": "boom", "receive_count": 5}
    attributes = {**message.attributes, DEAD_LETTER_ATTRIBUTE: json.dumps(failure)}
    sqs = _sqs(platform)
    sent = sqs.send_message(
        QueueUrl=sqs.get_queue_url(QueueName=DLQ)["QueueUrl"],
        MessageBody=message.body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )
    return str(sent["MessageId"])


def test_replay_asks_first_publishes_to_the_topic_and_is_harmless_twice(site: Browsing, platform: Platform) -> None:
    email = f"replay-{uuid.uuid4().hex[:10]}@browser.example"
    event = MemberRegistered(
        member_id=uuid.uuid4().hex, email=email, display_name="Re Play", registered_at=datetime.now(UTC)
    )
    event_id = uuid.uuid4().hex
    message_id = dead_letter_of(platform, event, event_id)

    page = staff_console(site, platform)
    page.goto(f"/console/queues/{DLQ}")
    page.get_by_role("link", name=f"Replay message {message_id}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Replay member.registered.v1")
    expect(page.locator("#replay-topic")).to_have_text("members.fifo")
    expect(page.locator('[data-field="event-id"]')).to_have_text(event_id)
    expect(page.locator("#idempotence")).to_contain_text("keeps its id")
    expect(page.get_by_text("notifications", exact=False).first).to_be_visible()
    site.check_accessibility(page)

    page.get_by_role("button", name="Replay the event").click()  # not confirmed
    expect(page.locator(".govuk-error-summary")).to_contain_text("Tick the box")
    assert not platform.mails(email)
    page.get_by_label("Yes, publish this event again to members.fifo").check()
    page.get_by_role("button", name="Replay the event").click()
    expect(page).to_have_url(re.compile(r"notice=replayed&topic=members.fifo$"))
    expect(page.locator("#replayed")).to_have_text("The event was published again to members.fifo.")
    expect(page.locator(f'.scte-dead-letter[data-message-id="{message_id}"]')).to_have_count(0)
    deadline = time.monotonic() + 120
    while not platform.mails(email):  # the notifications service handled it this time
        assert time.monotonic() < deadline, "the replayed event was never handled"
        time.sleep(0.5)

    # The same event (same id) dead-lettered again and replayed again: the inbox drops it, no second mail.
    again = dead_letter_of(platform, event, event_id)
    page.goto(f"/console/queues/{DLQ}/replay?id={again}")
    page.get_by_label("Yes, publish this event again to members.fifo").check()
    page.get_by_role("button", name="Replay the event").click()
    expect(page.locator("#replayed")).to_be_visible()
    # A later event through the same consumer is handled: by then the replay had its turn too.
    marker = f"after-{uuid.uuid4().hex[:8]}@browser.example"
    dead_letter_of(
        platform,
        MemberRegistered(
            member_id=uuid.uuid4().hex, email=marker, display_name="After", registered_at=datetime.now(UTC)
        ),
        uuid.uuid4().hex,
    )
    page.goto(f"/console/queues/{DLQ}")
    card = page.locator(".scte-dead-letter", has_text=marker)
    card.get_by_role("button", name=re.compile(r"^Redrive message")).click()
    deadline = time.monotonic() + 120
    while not platform.mails(marker):
        assert time.monotonic() < deadline, "the later event was never handled"
        time.sleep(0.5)
    time.sleep(2)
    assert len(platform.mails(email)) == 1


def test_replay_is_for_staff_only_and_needs_the_csrf_token(site: Browsing, platform: Platform) -> None:
    event = MemberRegistered(
        member_id=uuid.uuid4().hex, email="x@browser.example", display_name="X", registered_at=datetime.now(UTC)
    )
    message_id = dead_letter_of(platform, event, uuid.uuid4().hex)
    path = f"/console/queues/{DLQ}/replay"
    anonymous = site.new_page()
    anonymous.goto(f"{path}?id={message_id}")
    expect(anonymous).to_have_url(re.compile(r"/sign-in\?next="))
    member = site.new_page()
    register(member, new_person())
    assert member.goto(f"{path}?id={message_id}").status == 403  # type: ignore[union-attr]
    token = member.locator('input[name="csrf_token"]').first.get_attribute("value") or ""
    refused = member.request.post(path, form={"csrf_token": token, "id": message_id, "confirm": "yes"})
    assert refused.status == 403

    staff = staff_console(site, platform)
    no_token = staff.request.post(path, form={"id": message_id, "confirm": "yes"})
    assert no_token.status == 403 and "The form has expired" in no_token.text()
    staff.goto(f"/console/queues/{DLQ}")
    expect(staff.locator(f'.scte-dead-letter[data-message-id="{message_id}"]')).to_have_count(1)  # still there
    for bad in (
        f"{path}?id=",
        f"{path}?id=no-such-message",
        f"{path}?id=bad%20id",
        "/console/queues/search/replay?id=x",
    ):
        assert staff.goto(bad).status == 404, bad  # type: ignore[union-attr]
