"""`scte up` supervises its children: a crashed service is started again, with the same port and data."""

from __future__ import annotations

import os
import signal
import time
import urllib.request

from .conftest import Platform


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_a_crashed_service_is_restarted(platform: Platform) -> None:
    before = platform.registry()["children"]["reports"]
    old_pid = int(before["pid"])
    assert _healthy(before["health"])
    os.kill(old_pid, signal.SIGKILL)  # a crash: no clean exit
    deadline = time.monotonic() + 60
    new_pid = old_pid
    while time.monotonic() < deadline:
        new_pid = int(platform.registry()["children"]["reports"]["pid"])
        if new_pid != old_pid and _healthy(before["health"]):
            break
        time.sleep(0.2)
    assert new_pid != old_pid, "the supervisor did not start reports again"
    assert _healthy(before["health"]), "reports was started again but is not healthy"
