"""The speed paths that rely on another library's internals, and when each is used.

Three fast paths reach into other libraries beyond their documented API:
- `greenlets`: `scte.bus.greenlets` replaces SQLAlchemy's `greenlet_spawn` (its asyncio protocol);
- `sqlite_inline`: `scte.bus.database` subclasses SQLAlchemy's aiosqlite adapter (its private attributes)
  to run `scte.bus.sqlite_inline` on the event loop's thread;
- `queue_http`: `scte.queue.server.http` replaces uvicorn's request cycle and imports uvicorn's internals.

`scte` installs beside other applications, whose pins may be other releases of these libraries (pyproject.toml
takes ranges). A path used with a release it was not tested with could fail in ways no API promises, so each
path is on only when every library it reaches into is at a version in its `tested` table; otherwise it is off,
with one warning in the log, and the plain path (SQLAlchemy's own spawner, aiosqlite, uvicorn's ASGI cycle)
runs instead. `SCTE_SPEED_PATHS=off` turns all of them off (the CI's slow-path run, `make test-slow-path`).
The decision is taken once per process and path, at first use.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib import metadata

__all__ = ["GREENLETS", "PATHS", "QUEUE_HTTP", "SQLITE_INLINE", "SpeedPath", "decide", "enabled", "reset"]

log = logging.getLogger("scte.speed_paths")

ENV = "SCTE_SPEED_PATHS"
"""`off` (or `0`, `false`, `no`) turns every speed path off; anything else (or unset) leaves them to their tables."""

_OFF = frozenset({"off", "0", "false", "no"})


@dataclass(frozen=True)
class SpeedPath:
    """A fast path and the releases of each library it reaches into that it was tested with."""

    name: str
    tested: dict[str, frozenset[str]] = field(hash=False)
    plain: str  # what runs instead, for the warning


# The releases the whole test suite ran on (constraints.txt); add one here after a run on it.
GREENLETS = SpeedPath("greenlets", {"sqlalchemy": frozenset({"2.1.9"})}, "SQLAlchemy's own greenlet_spawn")
SQLITE_INLINE = SpeedPath("sqlite_inline", {"sqlalchemy": frozenset({"2.1.9"})}, "the aiosqlite driver")
QUEUE_HTTP = SpeedPath(
    "queue_http",
    {"uvicorn": frozenset({"0.54.0"}), "httptools": frozenset({"0.9.0"})},
    "uvicorn's ASGI request cycle",
)
PATHS = (GREENLETS, SQLITE_INLINE, QUEUE_HTTP)

_decided: dict[str, bool] = {}


def installed_version(distribution: str) -> str | None:
    """The installed release of `distribution`, None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def decide(path: SpeedPath, env: str | None, versions: dict[str, str | None]) -> str | None:
    """Why `path` is off given the environment switch and the installed `versions`; None when it is on."""
    if env is not None and env.strip().lower() in _OFF:
        return f"{ENV}={env}"
    for distribution, tested in path.tested.items():
        version = versions.get(distribution)
        if version not in tested:
            releases = ", ".join(sorted(tested))
            return f"{distribution} {version or '(not installed)'} is not a tested release ({releases})"
    return None


def enabled(path: SpeedPath) -> bool:
    """Whether `path` is used in this process: decided at the first call, with one warning when it is off
    because of a version (the environment switch is a choice, logged at INFO)."""
    decision = _decided.get(path.name)
    if decision is not None:
        return decision
    env = os.environ.get(ENV)
    reason = decide(path, env, {name: installed_version(name) for name in path.tested})
    if reason is None:
        _decided[path.name] = True
        return True
    if reason.startswith(ENV):
        log.info("speed path %s off (%s): using %s", path.name, reason, path.plain)
    else:
        log.warning("speed path %s off: %s; using %s", path.name, reason, path.plain)
    _decided[path.name] = False
    return False


def reset() -> None:
    """Forget the decisions (tests that change the environment or the versions)."""
    _decided.clear()
