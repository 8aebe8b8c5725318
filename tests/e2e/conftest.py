"""The end-to-end tests' platform: one `scte up` for the session (tests/harness/platform.py).

Tests talk to the gateway (`platform.url`), read the mail the SMTP server received
(`platform.mails()`, `await platform.wait_for_mail(...)`), move every service's clock
(`platform.set_clock_offset(seconds)`), and stop or start one service (`platform.stop_service`,
`platform.start_service`) for resiliency tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.harness.platform import Platform, launch_up, running_platform, up_ports, wait_until_up

__all__ = ["Platform", "launch_up", "up_ports", "wait_until_up"]


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory) as running:
        yield running
