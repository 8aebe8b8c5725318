"""The browser tests' fixtures: one `scte up` and one Chromium for the session, a fresh set of browser
contexts per test (screenshots kept in build/browser-failures when it fails)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from tests.harness.browser import Browsing, open_browser
from tests.harness.platform import E2E_TIMEOUT, Platform, running_platform

# The console samples the broker's counters every 2 s here (10 s by default): its rates and under-performing
# hops show within seconds of the traffic a test drives (tests/browser/test_console_rates.py).
os.environ.setdefault("SCTE_CONSOLE_SAMPLE_SECONDS", "2")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The session's `scte up` starts in the first test's setup: every test here may wait for it."""
    here = Path(__file__).resolve().parent
    for item in items:
        if item.path.resolve().is_relative_to(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One `scte up` for the session; `SCTE_BROWSER_PLATFORM=<gateway url>,<data dir>` uses one already
    running instead (for working on the pages: the suite then runs in seconds)."""
    given = os.environ.get("SCTE_BROWSER_PLATFORM")
    if given:
        url, _, data_dir = given.partition(",")
        yield Platform(url.rstrip("/"), Path(data_dir), process=None)  # type: ignore[arg-type]
        return
    with running_platform(tmp_path_factory, "scte-web") as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with open_browser() as chromium:
        yield chromium


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def site(browser: Browser, platform: Platform, request: pytest.FixtureRequest) -> Iterator[Browsing]:
    browsing = Browsing(browser, platform.url, request.node.nodeid)
    yield browsing
    if request.node.stash.get(_FAILED, False):
        kept = browsing.keep_screenshots()
        print(f"screenshots kept: {', '.join(str(p) for p in kept)}")
    browsing.close()
