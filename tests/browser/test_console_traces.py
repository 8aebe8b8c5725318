"""The console's trace view in Chromium against a real `scte up`: a person registers on the portal (a
user action), staff find its trace by the correlation id its response answered, and see its spans as a
waterfall reaching the services downstream (the members service's request and publish, then the
handlers of notifications, search and activity); it works without JavaScript; others are refused."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from playwright.sync_api import Page, expect
from tests.browser.test_console import staff_console
from tests.harness.browser import Browsing
from tests.harness.people import buy_and_pay, new_person, register, sit_and_pass_exam
from tests.harness.platform import Platform
from typer.testing import CliRunner

from scte.cli import app

DOWNSTREAM = {"notifications", "search", "activity"}
"""Queues subscribed to member.registered.v1 (the welcome mail, the directory, the activity feed)."""


def records_of(platform: Platform, process: str) -> list[dict[str, Any]]:
    """The JSON lines of a process's log."""
    log = (platform.data_dir / "logs" / f"{process}.log").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in log if line.startswith("{")]


def registration_correlation_id(page: Page) -> str:
    """Register a new person; the correlation id the gateway answered to the registration form."""
    with page.expect_response(re.compile(r"/account\?notice=registered$")) as answer:
        register(page, new_person())
    posted = answer.value.request.redirected_from  # the form's POST, answered with a redirect to /account
    assert posted is not None and posted.method == "POST" and posted.url.endswith("/register")
    redirect = posted.response()
    assert redirect is not None
    correlation = redirect.headers.get("x-correlation-id", "")
    assert re.fullmatch(r"[0-9a-f-]{36}", correlation), correlation
    return correlation


def open_trace(page: Page, correlation: str, services: set[str], timeout: float = 120.0) -> set[str]:
    """Find the action by its correlation id until its trace has spans of `services` (spans arrive in
    the store half a second after they end, downstream handlers a little later); the services shown."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto("/console/traces")
        page.get_by_label("Correlation id or trace id").fill(correlation)
        page.get_by_role("button", name="Find").click()
        shown: set[str] = set()
        if re.search(r"/console/traces/[0-9a-f]{32}$", page.url):
            shown = set(page.locator("#spans-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.service)"))
            if services <= shown:
                return shown
        assert time.monotonic() < deadline, f"the trace of {correlation} never reached {services} (shown: {shown})"
        time.sleep(1.0)


def test_staff_follow_a_registration_through_every_service(site: Browsing, platform: Platform) -> None:
    correlation = registration_correlation_id(site.new_page())
    page = staff_console(site, platform)
    page.goto("/console")
    page.get_by_role("link", name="Traces of user actions").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Traces of user actions")

    shown = open_trace(page, correlation, {"gateway", "members", *DOWNSTREAM})
    assert {"gateway", "members", *DOWNSTREAM} <= shown
    expect(page.get_by_role("heading", level=1)).to_have_text("POST /register")
    expect(page.locator("#trace-summary")).to_contain_text(correlation)
    expect(page.locator("#trace-total")).to_have_text(re.compile(r"^\d+\.\d ms$"))
    table = page.locator("#spans-table tbody")
    expect(table.locator('tr[data-kind="producer"][data-service="members"]')).to_contain_text(
        "publish member.registered.v1"
    )
    for service in DOWNSTREAM:  # each handler: its name, the event, and how long the message waited
        row = table.locator(f'tr[data-kind="consumer"][data-service="{service}"]').first
        expect(row).to_contain_text("member.registered.v1")
        expect(row.locator("td").nth(4)).to_have_text(re.compile(r"^\d+\.\d$"))
    # the waterfall draws one bar per span, the same rows as the table
    assert page.locator("#waterfall g.scte-span").count() == table.locator("tr").count()
    site.check_accessibility(page)
    site.shoot(page, "console-trace")

    # every process logged its part of the action as JSON lines carrying the action's correlation id
    for process in ("gateway", "members", "notifications"):
        log = (platform.data_dir / "logs" / f"{process}.log").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in log if line.startswith("{")]
        mine = [r for r in records if r.get("correlation_id") == correlation]
        assert mine and all(r["service"] == process and len(r["trace_id"]) == 32 for r in mine), process
    access = [r for r in records_of(platform, "members") if r.get("correlation_id") == correlation]
    assert any(r["logger"] == "scte.access" and r["route"] == "/members" and r["status"] == 201 for r in access)
    handled = [r for r in records_of(platform, "notifications") if r.get("correlation_id") == correlation]
    assert any(r["logger"] == "scte.handler" and r["event_type"] == "member.registered.v1" for r in handled)

    # the list of recent actions shows it with the services it reached
    page.goto("/console/traces")
    row = page.locator(f'#actions-table tr[data-correlation-id="{correlation}"]')
    expect(row).to_have_count(1)
    for service in DOWNSTREAM:
        expect(row.locator('[data-field="services"]')).to_contain_text(service)
    site.check_accessibility(page)
    site.shoot(page, "console-traces")


def test_the_trace_view_works_without_javascript_and_refuses_bad_ids(site: Browsing, platform: Platform) -> None:
    correlation = registration_correlation_id(site.new_page())
    page = staff_console(site, platform, javascript=False)
    open_trace(page, correlation, {"members", "notifications"})
    response = page.goto("/console/traces?q=%3Cscript%3E")
    assert response is not None and response.status == 400
    expect(page.locator("#q-error")).to_contain_text("Enter a correlation id")
    expect(page.locator("#q")).to_have_value("<script>")
    response = page.goto("/console/traces/" + "0" * 32)
    assert response is not None and response.status == 404
    response = page.goto("/console/traces/not-a-trace")
    assert response is not None and response.status == 404


def test_the_trace_view_is_for_staff_only(site: Browsing, platform: Platform) -> None:
    anonymous = site.new_page()
    for path in ("/console/traces", "/console/traces/" + "0" * 32):
        anonymous.goto(path)
        expect(anonymous).to_have_url(re.compile(r"/sign-in\?next="))
    member = site.new_page()
    register(member, new_person())
    for path in ("/console/traces", "/console/traces/" + "0" * 32):
        response = member.goto(path)
        assert response is not None and response.status == 403, path


def test_a_members_page_shows_the_actions_reference_and_scte_trace_follows_it(
    site: Browsing, platform: Platform
) -> None:
    """The page after a form shows the posted action's correlation id (not the redirect's GET): the id a
    member quotes is the one staff and `scte trace` find; any other page shows its own answer's id."""
    page = site.new_page()
    correlation = registration_correlation_id(page)
    expect(page).to_have_url(re.compile(r"/account\?notice=registered$"))
    reference = page.locator("#reference code")
    expect(reference).to_have_text(correlation)
    site.check_accessibility(page)

    answer = page.reload()  # shown once: a later page shows its own correlation id
    assert answer is not None
    own = answer.headers.get("x-correlation-id", "")
    assert own and own != correlation
    expect(reference).to_have_text(own)
    # a carried reference that is not an id is never shown (nor echoed): the page's own id instead
    page.context.add_cookies([{"name": "scte_ref", "value": "%3Cb%3Ex", "url": page.url}])
    answer = page.reload()
    assert answer is not None
    expect(reference).to_have_text(answer.headers.get("x-correlation-id", ""))

    # the reference from the page finds the action in the console and from the command line
    staff = staff_console(site, platform)
    open_trace(staff, correlation, {"gateway", "members", *DOWNSTREAM})
    runner = CliRunner()
    result = runner.invoke(app, ["trace", correlation, "--data", str(platform.data_dir), "--json"])
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["correlation_id"] == correlation and shown["total_ms"] > 0
    handled = {r["service"] for r in shown["spans"] if r["hop"] == "handled"}
    assert handled >= DOWNSTREAM
    assert any(r["hop"] == "published" and r["service"] == "members" for r in shown["spans"])


AWARD_HOPS = {"learning", "certification", "members", "notifications", "search", "companies", "reports", "activity"}
"""An exam pass: learning publishes it, certification awards, the award's consumers handle it."""


def test_staff_follow_an_exam_pass_by_the_reference_on_the_members_page(site: Browsing, platform: Platform) -> None:
    staff = staff_console(site, platform)
    member = site.new_page()
    register(member, new_person(), listed=True, city="Exeter")
    buy_and_pay(member, "/account", "Pay dues for a year")
    buy_and_pay(member, "/exams", "Buy the BPI exam")
    sit_and_pass_exam(member, staff, "BPI")  # the paper handed in: a POST, then /exams?notice=exam-passed
    correlation = member.locator("#reference code").inner_text()
    assert re.fullmatch(r"[0-9a-f-]{36}", correlation), correlation

    shown = open_trace(staff, correlation, {"gateway", *AWARD_HOPS})
    assert shown >= AWARD_HOPS
    expect(staff.locator("#trace-summary")).to_contain_text(correlation)
    expect(staff.locator("#trace-total")).to_have_text(re.compile(r"^\d+\.\d ms$"))
    table = staff.locator("#spans-table tbody")
    for service in AWARD_HOPS - {"learning"}:  # each downstream hop: a handler with its duration
        row = table.locator(f'tr[data-kind="consumer"][data-service="{service}"]').first
        expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^\d+\.\d$"))
    expect(table.locator('tr[data-kind="producer"][data-service="learning"]').first).to_contain_text("publish")
    site.check_accessibility(staff)
    site.shoot(staff, "console-trace-exam-pass")
