"""Time for the engine: the wall clock in production, a manual clock in tests.

Everything time-dependent (visibility, delays, retention, the FIFO deduplication window, long polls)
reads the engine's clock, so tests move time forward instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait until `event` is set or `timeout` seconds of this clock pass; True if the event was set."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if timeout <= 0:
            return event.is_set()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return event.is_set()
        return True


class ManualClock:
    """A clock that moves only when told to; waiters wake when it passes their deadline."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._tick = asyncio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every waiter so it can check its deadline."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        deadline = self._now + timeout
        while not event.is_set() and self._now < deadline:
            tick = self._tick
            event_wait = asyncio.ensure_future(event.wait())
            tick_wait = asyncio.ensure_future(tick.wait())
            try:
                await asyncio.wait({event_wait, tick_wait}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                event_wait.cancel()
                tick_wait.cancel()
        return event.is_set()
