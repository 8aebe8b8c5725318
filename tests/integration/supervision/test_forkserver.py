"""The fork server (`scte.supervision.forkserver`): a child forked from it runs `python -m <module>` with
the server's preloaded libraries already mapped, is the supervisor's own child (waited for, its exit
code known), and dies with the supervisor like any child `scte up` starts.

The supervisor here is a small script in a process of its own: a subreaper changes how its process
adopts orphans, which the test process must not.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"
WAIT = 300.0
"""The server imports FastAPI, SQLAlchemy and the kit before its first fork: slow on a busy machine."""

SUPERVISOR = textwrap.dedent(
    """
    import json, os, sys, time
    from scte.supervision.forkserver import ForkServer, become_subreaper

    assert become_subreaper()
    directory, port = sys.argv[1], sys.argv[2]
    server = ForkServer(dict(os.environ), directory + "/forkserver.log")
    with open(directory + "/child.log", "ab") as log:
        failing = server.spawn("json.tool", [directory + "/missing.json"], dict(os.environ), log.fileno())
        serving = server.spawn("http.server", ["--bind", "127.0.0.1", port], dict(os.environ), log.fileno())
    assert failing is not None and serving is not None, server.failure
    code = failing.wait(120)
    print(json.dumps({"failing": failing.pid, "code": code, "serving": serving.pid, "server": server.process.pid}))
    sys.stdout.flush()
    time.sleep(3600)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _eventually(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout:.0f} s")
        time.sleep(0.1)


def test_a_forked_child_shares_the_preload_is_the_supervisors_and_dies_with_it(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "SCTE_TRANSPORT": "inprocess"}
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(tmp_path), str(port)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert supervisor.stdout is not None
        line = supervisor.stdout.readline()  # blocks until the script has forked both (or died)
        assert line, f"the supervisor script failed: {supervisor.wait(WAIT)}"
        started = json.loads(line)

        # the exit code of a forked child reaches the supervisor, its output the log it was given
        assert started["code"] == 2, (tmp_path / "child.log").read_text()
        assert "missing.json" in (tmp_path / "child.log").read_text()

        serving = int(started["serving"])
        assert _parent(serving) == supervisor.pid  # re-parented: the supervisor waits for it itself

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        _eventually(listening, "the forked http.server listening")
        # forked from the preloaded server: pydantic's compiled core is mapped, which http.server alone
        # never loads
        assert "pydantic_core" in Path(f"/proc/{serving}/maps").read_text()

        os.kill(supervisor.pid, signal.SIGKILL)
        supervisor.wait(WAIT)
        _eventually(lambda: not _alive(serving), "the forked child gone after the supervisor's kill -9")
        _eventually(lambda: not _alive(int(started["server"])), "the fork server gone after the supervisor")
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
