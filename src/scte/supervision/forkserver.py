"""The services' processes forked from one that has already imported what they all use.

Every service process imports the same libraries (FastAPI, SQLAlchemy, uvicorn, the bus, the kit, the
contracts; the AWS SDK when it talks to a broker): about 70 MB each, ten times over. `scte up` starts
one fork server (`python -m scte.supervision.forkserver FD`) that imports them once and forks each
service from itself. A forked process shares those pages with the server and its siblings (copy on
write; `gc.freeze()` keeps the collector from writing to them), then imports its own package only and
runs it as `python -m <module>` would. PSS, which splits shared pages between the processes that map
them, is then a fraction of what each process imported alone costs.

The supervisor keeps full control of each process as of a child started with Popen: the fork server
forks an intermediate process that forks the service and exits, so the service is re-parented to the
supervisor, which is a child subreaper (Linux's `PR_SET_CHILD_SUBREAPER`). The supervisor then waits for
it, signals it and restarts it like any other child (`ForkedProcess`), and the service dies with the
supervisor (`PR_SET_PDEATHSIG`, set once it is re-parented). If the fork server is missing or fails,
the supervisor starts the child with Popen as before: the fork server saves memory, nothing depends on it.

Protocol (a SOCK_SEQPACKET socket pair): the server sends `{"ready": true}` once it has imported the
libraries; the supervisor sends `{"module", "args", "env"}` with the child's log file descriptor
attached, the server answers `{"pid": N}` or `{"error": "..."}`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import importlib
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from scte.supervision.launch import die_with_parent, launcher_argv

__all__ = ["PRELOAD", "ForkServer", "ForkedProcess", "become_subreaper", "main", "reap_orphans"]

PRELOAD = (
    "scte.kit.runtime",
    "scte.kit.db",
    "scte.kit.settings",
    "scte.contracts",
    "alembic.command",
    "alembic.config",
    "alembic.runtime.migration",
    "alembic.script",
    "aiosqlite",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.off",
    "uvicorn.loops.auto",
)
"""What every service imports. Nothing of one service only (Pillow is media's; a service's package is
its own), so a forked process holds no module it would not have imported itself."""
PRELOAD_AWS = ("scte.bus.transports.aws",)
"""Imported only when the services reach the broker with the AWS SDK (`SCTE_TRANSPORT=aws`)."""

READY_TIMEOUT = 300.0
"""How long the supervisor waits for the server to import the libraries (a busy machine is slow)."""
_PR_SET_CHILD_SUBREAPER = 36
_BUFFER = 1 << 20


def become_subreaper() -> bool:
    """Make this process the one orphaned descendants are re-parented to; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def reap_orphans(known: set[int]) -> None:
    """Collect exited processes re-parented to this subreaper that are none of `known` (the children
    Popen or ForkedProcess wait for themselves): a crashed service's own workers, for example."""
    while True:
        try:
            found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if found is None or found.si_pid in known:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(found.si_pid, 0)


class ForkedProcess:
    """A child forked by the server, re-parented to us: the part of Popen the supervisor uses."""

    def __init__(self, pid: int, args: Sequence[str]) -> None:
        self.pid = pid
        self.args = list(args)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # not ours (any more): someone else reaped it
                self.returncode = 1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # not reaped yet: the pid is still this process's
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The supervisor's side: start the server, ask it for children."""

    def __init__(self, env: Mapping[str, str], log_path: os.PathLike[str] | str) -> None:
        self._socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [sys.executable, "-m", "scte.supervision.forkserver", str(theirs.fileno())]
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                launcher_argv(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        theirs.close()
        self._ready: bool | None = None
        self.failure: str | None = None

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        self._socket.settimeout(timeout)
        try:
            data = self._socket.recv(_BUFFER)
        except OSError:
            return None
        return dict(json.loads(data)) if data else None

    def ready(self) -> bool:
        """Whether the server has imported the libraries (waits for it the first time)."""
        if self._ready is None:
            message = self._receive(READY_TIMEOUT)
            self._ready = bool(message and message.get("ready"))
            if not self._ready:
                self._fail("it did not become ready")
        return bool(self._ready) and self.process.poll() is None

    def _fail(self, why: str) -> None:
        self._ready = False
        self.failure = why
        self.close()

    def spawn(self, module: str, args: Sequence[str], env: Mapping[str, str], log_fd: int) -> ForkedProcess | None:
        """`python -m module *args` forked from the server, its output to `log_fd`; None if it cannot."""
        if not self.ready():
            return None
        request = json.dumps({"module": module, "args": list(args), "env": dict(env)}).encode()
        try:
            socket.send_fds(self._socket, [request], [log_fd])
            reply = self._receive(60.0)
        except OSError as exc:
            self._fail(str(exc))
            return None
        if not reply or "pid" not in reply:
            self._fail(str(reply.get("error") if reply else "no answer"))
            return None
        return ForkedProcess(int(reply["pid"]), [sys.executable, "-m", module, *args])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- the server --------------------------------------------------------------------------------------------


def _preload() -> None:
    modules = PRELOAD + (PRELOAD_AWS if os.environ.get("SCTE_TRANSPORT") == "aws" else ())
    for name in modules:
        importlib.import_module(name)
    gc.collect()
    gc.freeze()  # the collector never writes to these objects again: their pages stay shared


def _run_child(supervisor: int, module: str, args: list[str], env: dict[str, str], log_fd: int) -> None:
    """In the service's process: wait to be re-parented to the supervisor, bind to it, run the module."""
    code = 1
    try:
        os.setsid()
        deadline = time.monotonic() + 10.0
        while os.getppid() != supervisor:  # the intermediate process exits at once
            if time.monotonic() > deadline:
                os._exit(1)
            time.sleep(0.001)
        die_with_parent(signal.SIGTERM)
        if os.getppid() != supervisor:  # the supervisor died meanwhile
            os._exit(1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _fork(supervisor: int, channel: socket.socket, request: dict[str, Any], log_fd: int) -> int:
    """Fork the intermediate process, which forks the service and exits; the service's pid."""
    reader, writer = os.pipe()
    intermediate = os.fork()
    if intermediate == 0:
        try:
            channel.close()
            os.close(reader)
            pid = os.fork()
            if pid == 0:
                os.close(writer)
                _run_child(supervisor, request["module"], list(request["args"]), dict(request["env"]), log_fd)
            os.write(writer, str(pid).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(intermediate, 0)
    if not answer:
        raise OSError("the fork failed")
    return int(answer)


def serve(channel: socket.socket) -> None:
    supervisor = os.getppid()
    _preload()
    sys.stdout.flush()
    sys.stderr.flush()
    channel.send(json.dumps({"ready": True}).encode())
    while True:
        try:
            data, fds, _flags, _address = socket.recv_fds(channel, _BUFFER, 1)
        except OSError:
            return
        if not data:  # the supervisor closed its end: nothing more to start
            return
        try:
            request = json.loads(data)
            if not fds:
                raise ValueError("no log file descriptor")
            reply: dict[str, Any] = {"pid": _fork(supervisor, channel, request, fds[0])}
        except Exception as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            for fd in fds:
                os.close(fd)
        channel.send(json.dumps(reply).encode())


def main(args: list[str] | None = None) -> None:
    args = sys.argv[1:] if args is None else args
    if len(args) != 1 or not args[0].isdigit():
        raise SystemExit("usage: python -m scte.supervision.forkserver FD")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
    serve(socket.socket(fileno=int(args[0])))


if __name__ == "__main__":
    main()
