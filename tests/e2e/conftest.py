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


async def join_company(platform: Platform, company_id: str, inviter_token: str, member_id: str, token: str) -> None:
    """The member joins the company with consent: invited by one of its admins (or staff), accepted
    by the member themselves (a member cannot link themselves to a company)."""
    async with platform.client(inviter_token) as inviter:
        sent = await inviter.post(f"/api/companies/companies/{company_id}/invitations", json={"member_id": member_id})
        assert sent.status_code == 201, sent.text
    async with platform.client(token) as member:
        accepted = await member.post(
            f"/api/companies/members/{member_id}/invitations/{sent.json()['invitation_id']}/accept"
        )
        assert accepted.status_code == 200, accepted.text
