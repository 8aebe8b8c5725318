"""docs/tutorial.md, run as written: every fenced block in order, in a fresh directory.

A `python` block whose first line is `# <file>.py` is written to that file. In a `console` block each
`$ ` line is a command run with the shell; the lines after it are output it must print (each one a
part of a line of its output; a command whose output is expected later, as the certificate, is
retried until it appears). The servers (`scte queue serve`, `scte run`) stay running in the
background until the end, then get Ctrl-C (SIGINT), as a reader would; `scte run` must stop cleanly.
The one change to the text: the broker's port 9324 becomes a free port.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
SERVERS = ("scte queue serve", "scte run ")
PATIENCE = 300.0  # seconds for one step (a server ready, an effect shown): a loaded machine starts Python slowly

pytestmark = pytest.mark.timeout(1800)  # a dozen steps, each within PATIENCE


@dataclass
class Block:
    language: str
    lines: list[str]


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)


def blocks(text: str) -> list[Block]:
    return [Block(m.group(1), m.group(2).splitlines()) for m in re.finditer(r"```(\w+)\n(.*?)```", text, re.S)]


def commands(block: Block) -> list[Command]:
    out: list[Command] = []
    for line in block.lines:
        if line.startswith("$ "):
            out.append(Command(line[2:]))
        elif line.strip():
            out[-1].expected.append(line.strip())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {PATIENCE} s")
        time.sleep(0.1)


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    port = str(free_port())
    text = TUTORIAL.read_text(encoding="utf-8").replace("9324", port)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)  # the reader's shell: the installed scte, the files of this directory
    servers: list[tuple[str, subprocess.Popen[bytes]]] = []
    files: list[str] = []
    ran: list[str] = []
    try:
        for block in blocks(text):
            if (
                block.language == "python"
                and block.lines
                and block.lines[0].startswith("# ")
                and block.lines[0].endswith(".py")
            ):
                name = block.lines[0][2:].strip()
                (tmp_path / name).write_text("\n".join(block.lines) + "\n", encoding="utf-8")
                files.append(name)
                continue
            if block.language != "console":
                continue
            for command in commands(block):
                ran.append(command.line)
                if command.line.startswith(SERVERS):
                    log = tmp_path / f"server-{len(servers)}.log"
                    with log.open("wb") as sink:
                        process = subprocess.Popen(
                            f"exec {command.line}", shell=True, cwd=tmp_path, env=env, stdout=sink, stderr=sink
                        )
                    servers.append((command.line, process))
                    if command.line.startswith("scte queue serve"):
                        wait_until(lambda: broker_answers(port), "the embedded broker answering /health")
                    else:  # scte run: ready when it says so (queue and subscription provisioned)
                        wait_until(
                            lambda log=log, process=process: "running on" in log.read_text() or exited(process),
                            "scte run starting",
                        )
                        assert process.poll() is None, log.read_text()
                    continue
                run_and_check(command, tmp_path, env)
        assert files == ["certificates.py", "test_certificates.py", "send.py"]
        assert any(c.startswith("scte run certificates:service") for c in ran)
        assert any(c.startswith("python -c") for c in ran)  # the effect was checked
    finally:
        for line, process in reversed(servers):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                code = process.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
            if line.startswith("scte run"):
                assert code == 0, f"{line} ended with {code}"


def exited(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is not None


def broker_answers(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def run_and_check(command: Command, cwd: Path, env: dict[str, str]) -> None:
    """Run until it succeeds with the expected output; an effect that is expected "a moment later"
    may need a few tries."""
    deadline = time.monotonic() + PATIENCE
    while True:
        result = subprocess.run(
            command.line, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=PATIENCE
        )
        output = result.stdout + result.stderr
        if result.returncode == 0 and all(any(e in line for line in output.splitlines()) for e in command.expected):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"$ {command.line}\n(exit {result.returncode}; expected {command.expected})\n{output}")
        time.sleep(0.2)
