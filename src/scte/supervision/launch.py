"""Children that die with their parent: `python -m scte.supervision.launch PARENT_PID ARGV...`.

`scte up` starts each child through this launcher. It asks Linux to send the child SIGTERM when its
parent dies (prctl PR_SET_PDEATHSIG, kept across the exec below), checks the parent is still the one
that started it (it may have died before the request), then replaces itself with ARGV. So a supervisor
killed with SIGKILL, or one that crashed on a broken pipe, leaves no process holding the ports.

A launcher process rather than Popen's `preexec_fn`: that runs Python between fork and exec, which is
unsafe once the supervisor has threads (its provisioning and seeding use asyncio's thread pool).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

__all__ = ["die_with_parent", "launcher_argv", "main"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent exits; False where unsupported
    (not Linux). Also usable as a process pool's initializer."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    return True


def launcher_argv(argv: list[str], parent_pid: int | None = None) -> list[str]:
    """`argv` run through the launcher, bound to `parent_pid` (default: this process)."""
    parent = os.getpid() if parent_pid is None else parent_pid
    return [sys.executable, "-m", "scte.supervision.launch", str(parent), *argv]


def main(args: list[str] | None = None) -> None:
    args = sys.argv[1:] if args is None else args
    if len(args) < 2 or not args[0].isdigit():
        print("usage: python -m scte.supervision.launch PARENT_PID COMMAND [ARG...]", file=sys.stderr)
        raise SystemExit(2)
    parent, argv = int(args[0]), args[1:]
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl: nobody will supervise this child
        raise SystemExit(1)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
