"""`scte up`'s port flags and `scte status` on a real `scte up` of its own (not the session's): the
parts listen where the flags say, the long steps are reported, `scte status` exits 0 while all is
healthy, 2 when a part is down, 1 once it is stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scte.platform import SERVICES
from scte.up import PORT_NAMES

from .conftest import STARTUP_TIMEOUT, scte_env, wait_until_up
from .processes import alive, eventually


def _free_block(count: int) -> int:
    """A base with `count` free ports in a row, below the kernel's ephemeral range (32768-) so that no
    outgoing connection takes one meanwhile."""
    for base in range(20000 + (os.getpid() % 50) * 200, 32000, 211):
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError("no block of free ports")


def _status(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scte.cli", "status", "--data", str(data_dir), *extra],
        capture_output=True,
        text=True,
        env=scte_env(),
        timeout=120,
        check=False,
    )


def _status_json(data_dir: Path) -> tuple[int, dict[str, Any]]:
    done = _status(data_dir, "--json")
    return done.returncode, json.loads(done.stdout)


@pytest.mark.timeout(STARTUP_TIMEOUT + 300)
def test_up_on_flagged_ports_and_status(tmp_path: Path) -> None:
    base = _free_block(len(PORT_NAMES) + 3)
    gateway, broker, mail = base + len(PORT_NAMES), base + len(PORT_NAMES) + 1, base + len(PORT_NAMES) + 2
    data_dir = tmp_path / "data"
    log_path = tmp_path / "scte-up.log"
    argv = [sys.executable, "-m", "scte.cli", "up", "--data", str(data_dir), "--no-seed"]
    argv += ["--port-base", str(base), "--gateway-port", str(gateway), "--broker-port", str(broker)]
    argv += ["--mail-port", str(mail)]
    environment = scte_env()
    for name in PORT_NAMES:  # the flags decide, not the variables a shell may have set
        environment.pop(f"SCTE_{name.upper()}_PORT", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(process, data_dir, log_path, f"http://127.0.0.1:{gateway}", seeded=False)
        registry = json.loads((data_dir / "run" / "processes.json").read_text(encoding="utf-8"))
        ports = {name: child["port"] for name, child in registry["children"].items()}
        assert (ports["gateway"], ports["broker"], ports["mail"]) == (gateway, broker, mail)
        for name in SERVICES:  # the block from the base: gateway, broker, mail, then the services
            assert ports[name] == base + PORT_NAMES.index(name), name
        log = log_path.read_text()
        assert f"✓ broker on 127.0.0.1:{broker}, topics and queues provisioned" in log
        assert f"✓ mail and {len(SERVICES)} services ready (migrated)" in log
        assert f"✓ gateway on 127.0.0.1:{gateway}" in log

        shown = _status(data_dir)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "SCTE Platform is up" in shown.stdout and f"http://127.0.0.1:{gateway}/docs" in shown.stdout
        code, state = _status_json(data_dir)
        assert code == 0 and state["running"] and state["healthy"]
        assert state["supervisor"] == process.pid
        parts = {part["name"]: part for part in state["parts"]}
        assert set(parts) == {"broker", "mail", "gateway", *SERVICES}
        assert {part["state"] for part in parts.values()} == {"healthy"}
        assert parts["search"]["where"] == f"http://127.0.0.1:{ports['search']}"

        # a service stopped on purpose is not restarted: the system is up but degraded
        search = int(registry["children"]["search"]["pid"])
        os.kill(search, signal.SIGTERM)
        eventually(lambda: not alive(search), "search stopped", timeout=60)
        code, state = _status_json(data_dir)
        assert code == 2, state
        assert not state["healthy"]
        states = {part["name"]: part["state"] for part in state["parts"]}
        assert states["search"] == "down" and states["members"] == "healthy"
        assert "SCTE Platform is degraded" in _status(data_dir).stdout
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    started = time.monotonic()
    while time.monotonic() - started < 30 and _status(data_dir).returncode != 1:
        time.sleep(0.5)
    stopped = _status(data_dir)
    assert stopped.returncode == 1, stopped.stdout
    assert "not up" in stopped.stdout
