"""The gateway's Swagger page at /docs in Chromium with no network: every request that does not go to
the loopback gateway is aborted, and the page still lists every service's operations from the
combined document, and "Try it out" calls the service through its /api/<service> prefix."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
from openapi_spec_validator import validate
from playwright.sync_api import ConsoleMessage, Page, Route, expect
from tests.harness.browser import Browsing
from tests.harness.platform import Platform

from scte.platform import SERVICES

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
WAIT = 60_000
"""Milliseconds a page may take on a busy machine: swagger-ui is 1.5 MB of script to parse."""


def _offline(page: Page) -> tuple[list[str], list[str]]:
    """Abort every request to a host other than the loopback; collect them, and the console's errors."""
    outside: list[str] = []
    errors: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.set_default_timeout(WAIT)
    page.route("**/*", only_loopback)
    page.on("console", console)
    return outside, errors


def _try_it_out(page: Page, operation: Any) -> tuple[str, str]:
    """Open an operation, press "Try it out" and "Execute"; the request URL and status shown."""
    operation.locator(".opblock-summary").first.click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    url = operation.locator(".request-url pre")
    expect(url).to_be_visible(timeout=WAIT)
    status = operation.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text(re.compile(r"\d{3}"), timeout=WAIT)
    return url.inner_text().strip(), status.inner_text().strip()


def test_the_gateway_docs_list_every_service_offline(site: Browsing, platform: Platform) -> None:
    document = httpx.get(f"{platform.url}/openapi.json", timeout=30).json()
    validate(document)
    assert "Not shown now" not in document["info"].get("description", ""), document["info"]
    page = site.new_page()
    outside, errors = _offline(page)
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("SCTE Platform API", timeout=WAIT)
    for name in SERVICES:
        expect(page.locator(f'.opblock-tag[data-tag="{name}"]')).to_be_visible(timeout=WAIT)
    methods = ("get", "post", "put", "patch", "delete")
    expected = sum(1 for item in document["paths"].values() for method in item if method in methods)
    expect(page.locator(".opblock")).to_have_count(expected, timeout=WAIT)
    sign_in = page.locator('.opblock-summary-path[data-path="/api/members/sessions"]')
    expect(sign_in.first).to_be_visible()
    # the operations needing a token show the lock of the bearer scheme; the Authorize button offers it
    expect(page.locator("button.authorize")).to_be_visible()

    health = page.locator(".opblock").filter(has=page.locator('[data-path="/api/learning/health"]'))
    url, status = _try_it_out(page, health)
    assert url == f"{platform.url}/api/learning/health", url
    assert status == "200", status
    assert outside == [], outside
    assert [e for e in errors if "Content Security Policy" in e or "Refused" in e] == [], errors


def test_try_it_out_on_a_service_page_keeps_the_gateway_prefix(site: Browsing, platform: Platform) -> None:
    """Opened through the gateway, a service's own page sent "Try it out" to /<path> on the gateway
    (the website answered); the document now names /api/<service> as its server."""
    page = site.new_page()
    outside, _errors = _offline(page)
    page.goto("/api/members/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("SCTE members", timeout=WAIT)
    health = page.locator(".opblock").filter(has=page.locator('[data-path="/health"]'))
    url, status = _try_it_out(page, health)
    assert url == f"{platform.url}/api/members/health", url
    assert status == "200", status
    me = page.locator(".opblock").filter(has=page.locator('[data-path="/me"]'))
    url, status = _try_it_out(page, me)
    assert url == f"{platform.url}/api/members/me", url
    assert status == "401", status  # no token given: the service itself refuses
    assert outside == [], outside
