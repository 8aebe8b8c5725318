"""One `scte up` per data directory, found again by that directory: the lock and `scte down`.

`scte up` holds an exclusive lock on `<data>/run/up.lock` for its whole life (the kernel drops it when
the process dies, however it dies), and records its pid and each child's in `<data>/run/processes.json`
with their start times, so a pid reused by an unrelated process is never signalled. `stop_instance`
(`scte down`) sends the supervisor SIGTERM, which stops the children in order, and waits for the lock
to be free; children still alive after that (a supervisor from before children died with it) get
SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "AlreadyRunning",
    "InstanceLock",
    "StopReport",
    "lock_path",
    "process_started",
    "registry_path",
    "stop_instance",
]


def registry_path(data_dir: Path) -> Path:
    return data_dir / "run" / "processes.json"


def lock_path(data_dir: Path) -> Path:
    return data_dir / "run" / "up.lock"


def process_started(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc), None if it does not exist or
    the system has no /proc. With the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has finished; only its parent's wait() is missing
        return None
    return int(fields[19])


def _same_process(pid: int | None, started: int | None) -> bool:
    if not pid:
        return False
    now = process_started(pid)
    if now is None:
        if Path("/proc/self/stat").exists():
            return False
        try:  # no /proc: the best we can do is "some process has this pid"
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False
        return True
    return started is None or now == started


class AlreadyRunning(RuntimeError):
    """Another `scte up` holds this data directory."""


class InstanceLock:
    """The exclusive lock of a data directory's running instance."""

    def __init__(self, data_dir: Path) -> None:
        self.path = lock_path(data_dir)
        self._handle: BinaryIO | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+b")  # not inherited by children (Python's default): they never hold it
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyRunning(f"another `scte up` is running on {self.path.parent.parent}") from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    @staticmethod
    def held(data_dir: Path) -> bool:
        """Whether a running `scte up` holds the lock of `data_dir`."""
        path = lock_path(data_dir)
        if not path.exists():
            return False
        with path.open("a+b") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False


@dataclass
class StopReport:
    supervisor: int | None = None
    """The supervisor's pid when one was running and got SIGTERM."""
    stopped: bool = False
    """Whether the supervisor exited within the timeout."""
    leftovers: dict[str, int] = field(default_factory=dict)
    """Children (name -> pid) still alive after the supervisor, stopped here."""
    killed: dict[str, int] = field(default_factory=dict)
    """Of those, the ones that needed SIGKILL."""


def _registry(data_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(registry_path(data_dir).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def stop_instance(data_dir: Path, *, timeout: float = 60.0, grace: float = 15.0) -> StopReport:
    """Stop the `scte up` running on `data_dir` (if any) and any child of it still alive."""
    report = StopReport()
    registry = _registry(data_dir)
    supervisor = registry.get("supervisor")
    if InstanceLock.held(data_dir) and _same_process(supervisor, registry.get("supervisor_started")):
        assert isinstance(supervisor, int)
        report.supervisor = supervisor
        os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while InstanceLock.held(data_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        report.stopped = not InstanceLock.held(data_dir)
        registry = _registry(data_dir) or registry  # a restarted child has a new pid
    children = registry.get("children", {})
    live = {
        name: int(child["pid"])
        for name, child in children.items()
        if _same_process(child.get("pid"), child.get("started"))
    }
    report.leftovers = dict(live)
    for pid in live.values():
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        live = {name: pid for name, pid in live.items() if _same_process(pid, children[name].get("started"))}
        time.sleep(0.2)
    for pid in live.values():
        _signal(pid, signal.SIGKILL)
    report.killed = live
    return report


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
