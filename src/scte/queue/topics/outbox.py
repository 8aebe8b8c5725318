"""A background worker draining a delivery outbox table (HTTP notifications, deliveries to other regions).

The worker runs `round()` over and over while it reports more due work (`None`), then sleeps for the
seconds it reports, or until `kick()` says new rows were committed. One task per worker, started by the
first kick; a round that fails is logged and retried a second later, so an outbox never stalls for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from scte.queue.clock import Clock
from scte.queue.store import StoreClosed

log = logging.getLogger(__name__)

IDLE_WAIT_S = 3600.0
RETRY_AFTER_FAILURE_S = 1.0

Round = Callable[[], Awaitable[float | None]]


class Worker:
    def __init__(self, name: str, round_: Round, clock: Clock) -> None:
        self._name = name
        self._round = round_
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def kick(self) -> None:
        """Rows were committed (or are due): run a round soon."""
        if self._closed:
            return
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        while not self._closed:
            self._wake.clear()
            try:
                wait = await self._round()
            except StoreClosed:
                return
            except Exception:
                log.exception("%s: delivery round failed", self._name)
                wait = RETRY_AFTER_FAILURE_S
            if wait is not None:
                await self._clock.wait(self._wake, wait)
