"""The memory of the whole `scte up` at idle, per process, and its start-up time to ready.

    python bench/footprint.py [--settle 10] [--before-ref REF] [--json bench/results/footprint.json]

Starts a real `scte up` (`python -m scte.cli up --data <temp dir>`, on free ports given through
SCTE_*_PORT) and waits until it is ready: the seed loaded on a first start and the table printed
("Ctrl-C stops everything"). The start-up time is from the launch to then. After `--settle` seconds
of idle it reads every process of the tree (the supervisor and its children, recursively) with
psutil's `memory_full_info`: RSS, PSS (the shared pages of the interpreter and its libraries split
between the processes that map them, so the sum is the tree's real memory) and USS, with each
process's role from `<data>/run/processes.json` (the fork server the services are forked from,
`scte.supervision.forkserver`, by its command line). Then it stops it (SIGINT, as Ctrl-C) and starts it
again on the same data directory: the restart (no seeding) is the second side of the report, the
start-up time of the processes alone. Each process's CPU seconds are recorded too (at idle, nearly all
of it spent starting), and their sum: on a busy machine, what the start costs when the wall time says
little.

The goals (issue 16): the whole system at idle <= 800 MB (the PSS sum), each service <= 60 MB, the
supervisor <= 40 MB, start-up to ready <= 15 s on an idle machine. The report says per goal whether it
was met; figures of a busy machine (see `conditions.py`) are marked so.

`--before-ref REF` also measures the sources of an older commit (`git archive REF src`) first, in the
same run, under the same conditions: the children of `scte up` run the sources it was started from.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import psutil

from conditions import Conditions

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = ROOT / "src"
SERVICE_NAMES = (
    "members",
    "learning",
    "certification",
    "commerce",
    "companies",
    "notifications",
    "activity",
    "reports",
    "media",
    "search",
)
READY_LINE = "Ctrl-C stops everything"
STARTUP_TIMEOUT = 600.0
"""Generous: on a busy machine a start takes minutes; the figure is the measured time, not this."""

GOAL_TOTAL_MB = 800.0
GOAL_SERVICE_MB = 60.0
GOAL_SUPERVISOR_MB = 40.0
GOAL_READY_SECONDS = 15.0
MB = 2**20


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def extract_source(ref: str, into: Path) -> Path:
    """The `src` tree of commit `ref` in `into/src`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def launch(src: Path, data_dir: Path, ports: dict[str, int], log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    env.update({f"SCTE_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "scte.cli", "up", "--data", str(data_dir)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir.parent,
        )


def wait_ready(process: subprocess.Popen[bytes], log_path: Path, offset: int) -> None:
    """Until the log (from `offset`: a restart appends to it) says the platform is up."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        log = log_path.read_text(errors="replace")[offset:]
        if READY_LINE in log:
            return
        if process.poll() is not None:
            raise RuntimeError(f"scte up exited with {process.returncode}:\n{log[-4000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"scte up not ready in {STARTUP_TIMEOUT:.0f} s:\n{log[-4000:]}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def roles(data_dir: Path, supervisor: int) -> dict[int, str]:
    registry = json.loads((data_dir / "run" / "processes.json").read_text(encoding="utf-8"))
    found = {supervisor: "supervisor"}
    for name, child in registry.get("children", {}).items():
        if child.get("pid"):
            found[int(child["pid"])] = name
    return found


def measure_tree(supervisor: int, role_of: dict[int, str]) -> list[dict[str, Any]]:
    """Every process of the tree: role, pid, RSS, PSS, USS (MB), threads."""
    root = psutil.Process(supervisor)
    rows = []
    for process in [root, *root.children(recursive=True)]:
        try:
            info = process.memory_full_info()
            threads = process.num_threads()
            times = process.cpu_times()
            parent = process.ppid()
            command = " ".join(process.cmdline())
        except psutil.Error:
            continue  # gone meanwhile
        role = role_of.get(process.pid) or (
            "forkserver" if "scte.supervision.forkserver" in command else f"{role_of.get(parent, 'unknown')} (child)"
        )
        rows.append(
            {
                "role": role,
                "pid": process.pid,
                "rss_mb": round(info.rss / MB, 1),
                "pss_mb": round(getattr(info, "pss", info.rss) / MB, 1),
                "uss_mb": round(getattr(info, "uss", info.rss) / MB, 1),
                "threads": threads,
                # CPU so far (at idle: almost all of it is the start); the supervisor's includes the
                # one-off steps it waited for
                "cpu_seconds": round(times.user + times.system + times.children_user + times.children_system, 2),
            }
        )
    return rows


def summary(rows: list[dict[str, Any]], ready_seconds: float) -> dict[str, Any]:
    services = [r for r in rows if r["role"] in SERVICE_NAMES]
    supervisor = next((r for r in rows if r["role"] == "supervisor"), None)
    total_pss = round(sum(r["pss_mb"] for r in rows), 1)
    worst_service = max(services, key=lambda r: r["pss_mb"], default=None)
    return {
        "processes": len(rows),
        "total_rss_mb": round(sum(r["rss_mb"] for r in rows), 1),
        "total_pss_mb": total_pss,
        "total_uss_mb": round(sum(r["uss_mb"] for r in rows), 1),
        "supervisor_pss_mb": supervisor["pss_mb"] if supervisor else None,
        "largest_service": {"role": worst_service["role"], "pss_mb": worst_service["pss_mb"]}
        if worst_service
        else None,
        "ready_seconds": round(ready_seconds, 2),
        "cpu_seconds": round(sum(r["cpu_seconds"] for r in rows), 1),
        "goals": {
            f"total_pss <= {GOAL_TOTAL_MB:.0f} MB": total_pss <= GOAL_TOTAL_MB,
            f"each service pss <= {GOAL_SERVICE_MB:.0f} MB": bool(services)
            and all(r["pss_mb"] <= GOAL_SERVICE_MB for r in services),
            f"supervisor pss <= {GOAL_SUPERVISOR_MB:.0f} MB": supervisor is not None
            and supervisor["pss_mb"] <= GOAL_SUPERVISOR_MB,
            f"ready <= {GOAL_READY_SECONDS:.0f} s": ready_seconds <= GOAL_READY_SECONDS,
        },
    }


def one_start(
    src: Path, data_dir: Path, ports: dict[str, int], log_path: Path, settle: float
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    offset = log_path.stat().st_size if log_path.exists() else 0
    started = time.monotonic()
    process = launch(src, data_dir, ports, log_path)
    try:
        wait_ready(process, log_path, offset)
        ready_seconds = time.monotonic() - started
        progress(f"  ready in {ready_seconds:.1f} s; idle for {settle:.0f} s")
        time.sleep(settle)
        rows = measure_tree(process.pid, roles(data_dir, process.pid))
    except BaseException:
        stop(process)
        raise
    rows.sort(key=lambda r: -r["pss_mb"])
    return process, {"summary": summary(rows, ready_seconds), "processes": rows}


def run_variant(name: str, src: Path, work: Path, conditions: Conditions, settle: float) -> dict[str, Any]:
    data_dir = work / name / "data"
    data_dir.parent.mkdir(parents=True)
    names = ["gateway", "broker", "smtp", *SERVICE_NAMES]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    log_path = work / name / "scte-up.log"
    result: dict[str, Any] = {"src": str(src)}
    for start in ("first_start", "restart"):
        progress(f"{name}: {start} (log {log_path})")
        with conditions.side(f"{name}/{start}"):
            process, result[start] = one_start(src, data_dir, ports, log_path, settle)
        stop(process)
        progress(f"{name}: {start}: {json.dumps(result[start]['summary'])}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of idle before measuring (10)")
    parser.add_argument("--before-ref", help="also measure this commit's sources first (e.g. a commit before a change)")
    parser.add_argument("--json", type=Path, help="also write the report to this file (e.g. bench/results/...)")
    args = parser.parse_args()
    conditions = Conditions()
    report: dict[str, Any] = {
        "after_ref": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "settle_seconds": args.settle,
    }
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
        work = Path(tmp)
        if args.before_ref:
            report["before_ref"] = args.before_ref
            before_src = extract_source(args.before_ref, work / "before-tree")
            report["before"] = run_variant("before", before_src, work, conditions, args.settle)
        report["after"] = run_variant("after", SRC, work, conditions, args.settle)
    report["conditions"] = conditions.report()
    conditions.say()
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
