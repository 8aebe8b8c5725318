"""`scte status`: what the `scte up` of a data directory runs, where, and whether each part is healthy.

Read from what `scte up` leaves in the directory (its lock and `run/processes.json`) and asked of the
parts themselves: each child's process must be the one recorded (pid and start time), and answer on
its port (a service and the gateway: `GET /health` is 200; the broker and the mail server: their port
takes a connection). Nothing is changed and no credential is read.

Exit codes: 0 up and every part healthy, 1 no `scte up` running on the directory, 2 running but a part
is down or failing its health check.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scte.supervision.instance import InstanceLock, process_started, registry_path

__all__ = ["NOT_RUNNING", "UNHEALTHY", "Part", "StatusReport", "print_status", "read_status"]

NOT_RUNNING = 1
UNHEALTHY = 2
_TIMEOUT = 3.0


@dataclass
class Part:
    name: str
    where: str
    pid: int | None
    state: str
    """healthy, unhealthy (runs, its check fails), or down (its process is gone)"""
    detail: str = ""


@dataclass
class StatusReport:
    data_dir: str
    running: bool
    supervisor: int | None = None
    gateway: str | None = None
    parts: list[Part] = field(default_factory=list)
    message: str = ""

    @property
    def healthy(self) -> bool:
        return self.running and bool(self.parts) and all(p.state == "healthy" for p in self.parts)

    @property
    def exit_code(self) -> int:
        if not self.running:
            return NOT_RUNNING
        return 0 if self.healthy else UNHEALTHY

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "healthy": self.healthy}


def _alive(pid: Any, started: Any) -> bool:
    return isinstance(pid, int) and pid > 0 and process_started(pid) is not None and process_started(pid) == started


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_TIMEOUT):
            return True
    except OSError:
        return False


def _health(url: str) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
            return response.status == 200, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except OSError as exc:
        return False, type(exc).__name__


def _check(name: str, child: dict[str, Any], host: str) -> Part:
    port = child.get("port")
    health = child.get("health")
    where = {
        "broker": f"http://{host}:{port} (SQS/SNS)",
        "mail": f"smtp://{host}:{port}",
    }.get(name, f"http://{host}:{port}")
    pid = child.get("pid") if isinstance(child.get("pid"), int) else None
    if not _alive(pid, child.get("started")):
        return Part(name, where, pid, "down", "its process is gone")
    if isinstance(health, str) and health:
        ok, detail = _health(health)
        return Part(name, where, pid, "healthy" if ok else "unhealthy", f"/health: {detail}")
    if isinstance(port, int) and _answers(host, port):
        return Part(name, where, pid, "healthy", "takes connections")
    return Part(name, where, pid, "unhealthy", "does not take connections")


def read_status(data_dir: Path) -> StatusReport:
    """The state of the `scte up` on `data_dir` (none running: `running` False)."""
    data_dir = data_dir.resolve()
    report = StatusReport(data_dir=str(data_dir), running=False)
    try:
        registry = json.loads(registry_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        registry = None
    supervisor = registry.get("supervisor") if isinstance(registry, dict) else None
    if not InstanceLock.held(data_dir) or not isinstance(registry, dict):
        report.message = f"no scte up running on {data_dir} (`scte up --data {data_dir}` starts it)"
        return report
    if not _alive(supervisor, registry.get("supervisor_started")):
        report.message = f"the lock of {data_dir} is held, but not by the scte up its registry names"
        return report
    report.running = True
    report.supervisor = supervisor
    gateway = registry.get("gateway")
    report.gateway = gateway if isinstance(gateway, str) else None
    host = urlsplit(report.gateway).hostname if report.gateway else None
    children = registry.get("children", {})
    if not isinstance(children, dict):
        children = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        report.parts = list(
            pool.map(lambda item: _check(item[0], item[1], host or "127.0.0.1"), sorted(children.items()))
        )
    order = {"broker": 0, "mail": 1, "gateway": 3}
    report.parts.sort(key=lambda p: (order.get(p.name, 2), p.name))
    if not report.parts:
        report.message = "scte up is starting: no part is running yet"
    return report


def print_status(report: StatusReport, console: Console | None = None) -> None:
    """The report as a table (or the reason nothing runs), on stdout."""
    console = console or Console()
    if not report.running:
        console.print(f"[red]not up:[/] {escape(report.message)}", highlight=False, soft_wrap=True)
        return
    colour = {"healthy": "green", "unhealthy": "yellow", "down": "red"}
    title = "SCTE Platform is up" if report.healthy else "SCTE Platform is degraded"
    table = Table(title=title)
    table.add_column("part")
    table.add_column("where")
    table.add_column("pid", justify="right")
    table.add_column("state")
    table.add_column("detail")
    for part in report.parts:
        table.add_row(
            escape(part.name),
            escape(part.where),
            str(part.pid or ""),
            f"[{colour.get(part.state, 'white')}]{part.state}[/]",
            escape(part.detail),
        )
    console.print(table)
    console.print(
        f"scte up pid {report.supervisor}; website and APIs: {escape(report.gateway or '?')}/ "
        f"(API docs: {escape(report.gateway or '?')}/docs); data: {escape(report.data_dir)}"
        + (f"; {escape(report.message)}" if report.message else ""),
        highlight=False,
        soft_wrap=True,
    )
