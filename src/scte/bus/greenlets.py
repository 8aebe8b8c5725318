"""Reused greenlets for SQLAlchemy's asyncio extension.

`AsyncSession`, `AsyncConnection` and their results run each call's sync code (the ORM, Core, the
pool) in a greenlet, so that the driver's coroutines can be awaited from inside it: SQLAlchemy's
`greenlet_spawn` creates a greenlet per call and drops it when the call returns. A bus transaction
makes several such calls (its connection, each statement, the commit), and the greenlets were the
largest single cost left on the bus's path: the in-process bench (`bench/bus.py`) spent 0.35-0.39 ms
of CPU per event with them and 0.31-0.32 ms with this module (docs/bus.md, "pooled greenlets").

`greenlet_spawn` here keeps the greenlets that finished a call, per thread, and runs the next call in
one of them. The protocol is SQLAlchemy's own (`sqlalchemy.util.concurrency.await_`): the sync code
switches to the greenlet's parent with an awaitable; the spawner awaits it on the event loop and
switches back with the result, or throws the exception in. So statements, the driver, cancellation
and `contextvars` behave as with SQLAlchemy's spawner; only the creation of a greenlet per call is
gone.

`install()` puts it in place of SQLAlchemy's `greenlet_spawn` in the SQLAlchemy modules that call it
(`scte.bus.database` does, for every engine and session factory the bus makes); `uninstall()` puts
SQLAlchemy's back. It is written against the pinned SQLAlchemy (constraints.txt): the whole test
suite runs on it, on SQLite (inline and aiosqlite) and PostgreSQL (asyncpg). With another SQLAlchemy
release, `install()` does nothing (`scte.speed_paths.GREENLETS`).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import GreenletExit, getcurrent, greenlet
from sqlalchemy import exc
from sqlalchemy.util import concurrency

from scte import speed_paths

__all__ = ["greenlet_spawn", "install", "installed", "uninstall"]

T = TypeVar("T")

POOL_LIMIT = 64
"""Greenlets kept per thread: as many as calls in flight at once, at most this many."""

_original = concurrency.greenlet_spawn
_local = threading.local()


class _Call:
    """One call handed to a worker; the worker leaves its outcome here."""

    __slots__ = ("args", "fn", "kwargs", "ok", "value")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn: Callable[..., Any] | None = fn
        self.args: tuple[Any, ...] | None = args
        self.kwargs: dict[str, Any] | None = kwargs
        self.ok = False
        self.value: Any = None

    def run(self) -> None:
        assert self.fn is not None and self.args is not None and self.kwargs is not None
        self.value = self.fn(*self.args, **self.kwargs)
        self.ok = True

    def clear(self) -> None:
        """Forget the call and its outcome: the idle worker that ran it still holds this object."""
        self.fn = self.args = self.kwargs = self.value = None


class _Worker(greenlet):
    # What `await_` checks before it switches to the parent with an awaitable.
    __sqlalchemy_greenlet_provider__ = True


def _serve(call: _Call) -> None:
    """A worker's life: run a call, hand the call back to the parent, wait for the next one."""
    while True:
        try:
            call.run()
        except GreenletExit:
            raise  # killed while suspended (collected, or its thread ended): die, as SQLAlchemy's do
        except BaseException as error:  # handed to the spawner, which raises it
            call.value = error
        parent = getcurrent().parent
        assert parent is not None  # set by the spawner
        call = parent.switch(call)


def _free() -> list[_Worker]:
    try:
        return _local.free  # type: ignore[no-any-return]
    except AttributeError:
        free: list[_Worker] = []
        _local.free = free
        return free


async def greenlet_spawn(fn: Callable[..., T], *args: Any, _require_await: bool = False, **kwargs: Any) -> T:
    """SQLAlchemy's `greenlet_spawn` (same arguments and outcome) on a reused greenlet."""
    current = getcurrent()
    free = _free()
    worker: _Worker | None = None
    while free:
        candidate = free.pop()
        if candidate.dead:
            continue
        try:
            candidate.parent = current
        except ValueError:  # the spawner runs inside this very worker's chain: take another
            continue
        worker = candidate
        break
    if worker is None:
        worker = _Worker(_serve, current)
    worker.gr_context = current.gr_context  # the caller's contextvars, as SQLAlchemy's greenlet has
    call = _Call(fn, args, kwargs)
    switched = False
    # Until the call comes back, what the worker switches out with is an awaitable of `await_`.
    value = worker.switch(call)
    while value is not call:
        switched = True
        try:
            result = await value
        except BaseException:
            value = worker.throw(*sys.exc_info())
        else:
            value = worker.switch(result)
    ok, outcome = call.ok, call.value
    call.clear()
    worker.gr_context = None
    if len(free) < POOL_LIMIT:
        free.append(worker)
    if _require_await and not switched:
        raise exc.AwaitRequired(
            "The current operation required an async execution but none was detected. This will usually"
            " happen when using a non compatible DBAPI driver. Please ensure that an async DBAPI is used."
        )
    if not ok:
        raise outcome
    return outcome  # type: ignore[no-any-return]


def _modules() -> list[Any]:
    # Importing them first: a module loaded later would keep SQLAlchemy's spawner (slower, not wrong).
    import sqlalchemy.engine.result
    import sqlalchemy.ext.asyncio.engine
    import sqlalchemy.ext.asyncio.result
    import sqlalchemy.ext.asyncio.session  # noqa: F401

    return [m for name, m in list(sys.modules.items()) if name.startswith("sqlalchemy") and m is not None]


def install() -> None:
    """Use `greenlet_spawn` in every loaded SQLAlchemy module that calls SQLAlchemy's (idempotent); nothing
    when the speed path is off (`scte.speed_paths`: an untested SQLAlchemy release, or `SCTE_SPEED_PATHS=off`)."""
    if not speed_paths.enabled(speed_paths.GREENLETS):
        return
    for module in _modules():
        if getattr(module, "greenlet_spawn", None) is _original:
            module.greenlet_spawn = greenlet_spawn


def uninstall() -> None:
    """Put SQLAlchemy's own `greenlet_spawn` back."""
    for module in _modules():
        if getattr(module, "greenlet_spawn", None) is greenlet_spawn:
            module.greenlet_spawn = _original


def installed() -> bool:
    """Whether `AsyncSession` runs its calls on this module's greenlets."""
    import sqlalchemy.ext.asyncio.session as session

    return getattr(session, "greenlet_spawn", None) is greenlet_spawn
