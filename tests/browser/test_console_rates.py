"""Rates, consumers and under-performing hops in Chromium against a real `scte up`: staff see a queue's
rates move while the test drives traffic, and when its consumer is stopped (SIGSTOP of the service's
process) the console and the data-flow map mark that hop as its backlog grows and its oldest message
ages; once the process runs again the backlog drains and the mark goes.

The traffic is real events the stopped service handles harmlessly once it runs again:
`member.sessions_revoked.v1` of members that do not exist, sent to its queue with the install's admin key.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from playwright.sync_api import Page, expect
from tests.browser.test_console import _sqs, staff_console
from tests.harness.browser import Browsing
from tests.harness.platform import Platform

from scte.bus.envelope import encode
from scte.contracts.members import MemberSessionsRevoked

QUEUE = "search"


def send_events(platform: Platform, queue: str, count: int) -> None:
    sqs = _sqs(platform)
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    for _ in range(count):
        event = MemberSessionsRevoked(
            member_id=f"ghost-{uuid.uuid4().hex[:12]}", epoch=1, reason="signed_out", revoked_at=datetime.now(UTC)
        )
        _, message = encode(event, source="members")
        sqs.send_message(
            QueueUrl=url,
            MessageBody=message.body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in message.attributes.items()},
        )


@contextmanager
def stopped(platform: Platform, service: str) -> Iterator[int]:
    """The service's process stopped (SIGSTOP) for the block, then continued whatever happened."""
    pid = int(platform.registry()["children"][service]["pid"])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def _drive_until(page: Page, platform: Platform, check: Any, what: str, timeout: float = 120.0) -> None:
    """Send a few events a second and reload `page` until `check(page)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        send_events(platform, QUEUE, 3)
        page.reload()
        if check(page):
            return
        assert time.monotonic() < deadline, f"not seen within {timeout} s: {what}"
        time.sleep(1.0)


def test_rates_move_and_a_stopped_consumer_marks_its_hop(site: Browsing, platform: Platform) -> None:
    page = staff_console(site, platform)
    page.goto("/console")
    row = page.locator(f'#queues tr[data-queue="{QUEUE}"]')
    expect(row.locator('[data-field="consumers"]')).to_have_text(f"1 ({QUEUE})")

    def received_moves(p: Page) -> bool:
        rates = p.locator(f'#queues tr[data-queue="{QUEUE}"] [data-field="rates"]').inner_text()
        numbers = re.findall(r"\d+(?:\.\d+)?", rates)  # a dash while there is no rate yet
        return len(numbers) == 3 and float(numbers[0]) > 0 and float(numbers[1]) > 0

    _drive_until(page, platform, received_moves, "the search queue's send and receive rates above 0")
    expect(row.locator('[data-field="chart"] svg polyline')).to_have_count(3)
    assert row.get_attribute("data-slow") == "no"
    site.check_accessibility(page)
    site.shoot(page, "console-rates")

    with stopped(platform, QUEUE):

        def marked(p: Page) -> bool:
            return p.locator(f'#queues tr[data-queue="{QUEUE}"]').get_attribute("data-slow") == "yes"

        _drive_until(page, platform, marked, "the stopped consumer's queue marked slow")
        expect(row.locator('[data-field="reasons"]')).to_contain_text(re.compile(r"backlog growing|ageing"))
        expect(row.locator('[data-field="consumers"]')).to_have_text("0")
        expect(page.locator('#services tr[data-service="search"]')).to_contain_text("down")
        # the other queues keep flowing: not marked
        expect(page.locator('#queues tr[data-queue="notifications"]')).to_have_attribute("data-slow", "no")

        page.goto("/console/map")

        def marked_on_the_map(p: Page) -> bool:
            node = p.locator(f'#flow-map [data-kind="queue"][data-name="{QUEUE}"]')
            return "scte-map-node--slow" in (node.get_attribute("class") or "")

        _drive_until(page, platform, marked_on_the_map, "the stopped consumer's hop marked on the map")
        edge = page.locator(f'#flow-map line[data-kind="consume"][data-source="{QUEUE}"]')
        expect(edge).to_have_class(re.compile(r"scte-map-edge--slow"))
        table_row = page.locator(f'#map-table tr[data-kind="consume"][data-source="{QUEUE}"]')
        expect(table_row).to_have_attribute("data-slow", "yes")
        expect(table_row.locator('[data-field="reasons"]')).to_contain_text(re.compile(r"backlog growing|ageing"))
        expect(page.locator('#map-table tr[data-kind="consume"][data-source="notifications"]')).to_have_attribute(
            "data-slow", "no"
        )
        expect(page.locator('#map-table tr[data-kind="publish"]').first).to_contain_text("published")
        site.check_accessibility(page)
        site.shoot(page, "console-map-slow")

    # running again: the backlog drains and the mark goes
    page.goto("/console")
    deadline = time.monotonic() + 120
    while row.get_attribute("data-slow") != "no" or row.locator('[data-field="visible"]').inner_text() != "0":
        assert time.monotonic() < deadline, "the search backlog never drained"
        time.sleep(2)
        page.reload()
    expect(row.locator('[data-field="consumers"]')).to_have_text(f"1 ({QUEUE})")
