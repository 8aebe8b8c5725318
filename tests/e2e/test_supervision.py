"""`scte up` supervises its children: a crashed service is started again, with the same port and data."""

from __future__ import annotations

import os
import signal
import time

from scte.up import _http_ok as _healthy

from .conftest import Platform


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
