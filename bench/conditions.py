"""What every benchmark records about the machine it ran on and how busy it was, side by side.

    conditions = Conditions()
    with conditions.side("ours"):
        ...                         # one side of a comparison
    with conditions.side("theirs", extra_processes=rabbitmq_processes()):
        ...
    report["conditions"] = conditions.report()   # machine, every side, and the verdict

Per side: the load average before and after, and the CPU that processes *outside* the benchmark used
just before it (a one-second sample) and meanwhile (the whole machine's busy CPU from /proc/stat minus
this process, its children and the side's `extra_processes`, e.g. RabbitMQ's Erlang VM), in cores.
The load average counts the benchmark's own processes too, and decays over minutes: after a side that
kept two cores busy it stays near 2 through the next side's start whatever the rest of the machine
does. So it decides only before the first side, when nothing of the benchmark has run yet; before the
later sides the others' CPU sample stands in for it:

- quiet: before the first side the 1-minute load average was at most QUIET_LOAD_PER_CORE per core;
  before and during every side other processes used at most QUIET_OTHERS_SHARE of the cores;
- otherwise not quiet, with the reasons; `assert_quiet_or_say_so` prints them on stderr, and a report
  is never labelled quiet when it was not.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil

QUIET_LOAD_PER_CORE = 0.25
"""1-minute load average per core at most, before a side, for the run to count as quiet."""
QUIET_OTHERS_SHARE = 0.10
"""Share of the machine's cores at most that other processes may use before and during a side."""
OTHERS_SAMPLE_SECONDS = 1.0
"""How long others' CPU is sampled just before each side (/proc/stat ticks are 10 ms: 1 s is 100 ticks)."""


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine: CPU model, cores, memory, OS, Python and SQLite versions."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))


def _own_seconds(extra: Iterable[psutil.Process]) -> float:
    """CPU seconds of this process, its children (live, and those reaped), and `extra`."""
    total = 0.0
    me = psutil.Process()
    times = me.cpu_times()
    total += times.user + times.system + times.children_user + times.children_system
    others = {p.pid: p for p in extra}
    others.update((p.pid, p) for p in me.children(recursive=True))  # a server we started is counted once
    for process in others.values():
        with contextlib.suppress(psutil.Error):
            t = process.cpu_times()
            total += t.user + t.system
    return total


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory so far (VmHWM, Linux), in MB; -1.0 where /proc does not say."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def processes_named(*names: str) -> list[psutil.Process]:
    """Running processes with one of these names (a broker the benchmark uses but did not start)."""
    found = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in names:
            found.append(process)
    return found


def rabbitmq_processes() -> list[psutil.Process]:
    return processes_named("beam.smp", "erl_child_setup", "epmd")


class Conditions:
    """The machine and, per side of a comparison, how busy it was (see the module's docstring)."""

    def __init__(self) -> None:
        self.machine = machine()
        self.cores = int(self.machine["cores"] or 1)
        self.sides: dict[str, dict[str, Any]] = {}
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    @contextlib.contextmanager
    def side(self, name: str, extra_processes: Iterable[psutil.Process] = ()) -> Iterator[dict[str, Any]]:
        """Record the load around one side; `extra_processes` count as the side's own (not others')."""
        extra = list(extra_processes)
        record: dict[str, Any] = {"load_average_before": load_average(), "first_side": not self.sides}
        record["others_cpu_cores_before"] = self._others_cores(extra, OTHERS_SAMPLE_SECONDS)
        busy, own, wall = _busy_seconds(), _own_seconds(extra), time.monotonic()
        try:
            yield record
        finally:
            wall = time.monotonic() - wall
            others = max(0.0, (_busy_seconds() - busy) - (_own_seconds(extra) - own))
            record["load_average_after"] = load_average()
            record["seconds"] = round(wall, 2)
            # /proc/stat counts in ticks (10 ms): over a short side the figure is coarse, never above the cores
            record["others_cpu_cores"] = round(min(float(self.cores), others / wall), 2) if wall > 0 else 0.0
            record["quiet"], record["not_quiet_because"] = self._verdict(record)
            self.sides[name] = record

    def _others_cores(self, extra: list[psutil.Process], seconds: float) -> float:
        """Cores that processes outside the benchmark kept busy over the next `seconds`."""
        busy, own, wall = _busy_seconds(), _own_seconds(extra), time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - wall
        others = max(0.0, (_busy_seconds() - busy) - (_own_seconds(extra) - own))
        return round(min(float(self.cores), others / wall), 2)

    def _verdict(self, record: dict[str, Any]) -> tuple[bool, list[str]]:
        reasons = []
        before, load_limit = record["load_average_before"][0], QUIET_LOAD_PER_CORE * self.cores
        if record["first_side"] and before > load_limit:
            reasons.append(f"1-min load average {before} before the first side (quiet: <= {load_limit})")
        others_limit = QUIET_OTHERS_SHARE * self.cores
        if record["others_cpu_cores_before"] > others_limit:
            reasons.append(
                f"other processes used {record['others_cpu_cores_before']} cores just before the side"
                f" (quiet: <= {others_limit})"
            )
        others = record["others_cpu_cores"]
        if others > others_limit:
            reasons.append(f"other processes used {others} cores during the side (quiet: <= {others_limit})")
        return not reasons, reasons

    @property
    def quiet(self) -> bool:
        return bool(self.sides) and all(side["quiet"] for side in self.sides.values())

    def report(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "started_at": self.started_at,
            "quiet": self.quiet,
            "quiet_rule": (
                f"before the first side 1-min load <= {QUIET_LOAD_PER_CORE} per core; before (1 s sample) and"
                f" during each side other processes <= {QUIET_OTHERS_SHARE:.0%} of the cores"
            ),
            "sides": self.sides,
        }

    def say(self) -> None:
        """On stderr: whether the run was quiet, and if not, which sides and why."""
        if self.quiet:
            print("conditions: quiet run", file=sys.stderr, flush=True)
            return
        print("conditions: NOT a quiet run; the figures are of a busy machine:", file=sys.stderr)
        for name, side in self.sides.items():
            for reason in side["not_quiet_because"]:
                print(f"  {name}: {reason}", file=sys.stderr)
        sys.stderr.flush()
