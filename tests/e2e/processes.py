"""What the supervision tests look at: live processes, sessions and ports (Linux /proc)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["alive", "eventually", "kill_leftover_children", "port_free", "processes_in_sessions", "registry_of"]


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie has finished: it only waits for its parent's wait())."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not Path("/proc/self/stat").exists()
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def processes_in_sessions(sessions: set[int]) -> list[str]:
    """Live processes (not zombies) whose session is one of `sessions` (Linux /proc), as "pid command"."""
    found: list[str] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        state, session = rest[0], int(rest[3])
        if session in sessions and state != "Z":
            found.append(f"{entry.name} {command}")
    return found


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the platform's servers bind
        try:
            server.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def eventually(check: Callable[[], Any], what: str, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")


def registry_of(data_dir: Path) -> dict[str, Any]:
    return dict(json.loads((data_dir / "run" / "processes.json").read_text(encoding="utf-8")))


def kill_leftover_children(data_dir: Path) -> None:
    """After a failed stop: SIGKILL the children `scte up` recorded that are still alive."""
    registry = data_dir / "run" / "processes.json"
    if not registry.exists():
        return
    for child in json.loads(registry.read_text(encoding="utf-8"))["children"].values():
        if child["pid"] and alive(int(child["pid"])):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(child["pid"]), signal.SIGKILL)
