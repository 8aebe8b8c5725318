"""The end-to-end tests' platform: one `scte up` for the session (tests/harness/platform.py).

Tests talk to the gateway (`platform.url`), read the mail the SMTP server received
(`platform.mails()`, `await platform.wait_for_mail(...)`), move every service's clock
(`platform.set_clock_offset(seconds)`), and stop or start one service (`platform.stop_service`,
`platform.start_service`) for resiliency tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness.platform import (
    E2E_TIMEOUT,
    STARTUP_TIMEOUT,
    Platform,
    launch_up,
    running_platform,
    scte_env,
    up_ports,
    wait_until_up,
)

__all__ = ["STARTUP_TIMEOUT", "Platform", "launch_up", "scte_env", "up_ports", "wait_until_up"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test of this folder E2E_TIMEOUT unless it sets its own (the project default, 120 s,
    is shorter than STARTUP_TIMEOUT)."""
    here = Path(__file__).resolve().parent
    for item in items:
        if item.path.resolve().is_relative_to(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory) as running:
        yield running
