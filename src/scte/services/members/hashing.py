"""argon2id hashing in a bounded pool, off the event loop.

argon2id costs 64 MiB and tens of milliseconds of a core per hash. Unbounded (`asyncio.to_thread`,
up to 32 threads), 32 concurrent bogus sign-ins took the members service from 144 to 528 MB and its
answers to 30 s. Here a few worker threads hash and at most `queue` hashes wait; beyond that
`HashingBusy` is answered 503 with Retry-After, so memory stays bounded and the service's other routes
keep answering.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["UNUSABLE_HASH", "HashingBusy", "HashingPool", "hash_password"]

UNUSABLE_HASH = "!"
"""The stored hash of an account that cannot sign in (seeded demo members): no password verifies."""

T = TypeVar("T")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password, used to even out sign-in timing")


def hash_password(password: str) -> str:
    """argon2id with the library's recommended parameters (blocking: call it in a worker)."""
    return _hasher.hash(password)


def _verify(stored: str | None, password: str) -> tuple[bool, bool]:
    """(valid, needs rehash). An unknown account or an unusable hash costs a real verification too,
    so the answer's timing does not tell which accounts exist or can sign in."""
    try:
        if stored is None or stored == UNUSABLE_HASH:
            _hasher.verify(_DUMMY_HASH, password)
            return False, False
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False, False
    return True, _hasher.check_needs_rehash(stored)


# -- the bounded pool -------------------------------------------------------------------------------------


class HashingBusy(Exception):
    """Every worker is hashing and the queue is full: try again in `retry_after` seconds (503)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many sign-ins are being checked right now; try again shortly")
        self.retry_after = retry_after


class HashingPool:
    """argon2 hashing and verification on `workers` threads, with at most `queue` waiting, and none
    admitted whose expected wait (the hashes ahead of it, at the recent pace) exceeds `max_wait` seconds:
    on a busy host a hash takes longer, so a count alone would let the waits grow to tens of seconds."""

    def __init__(self, workers: int | None = None, queue: int = 16, max_wait: float = 2.0) -> None:
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.queue = queue
        self.max_wait = max_wait
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="argon2")
        self._lock = threading.Lock()
        self._pending = 0  # submitted and not finished (running or waiting), decremented by the worker
        self._pace = 0.1  # seconds per hash, a moving average of the recent ones

    def _timed(self, fn: Callable[..., T], *args: object) -> T:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            took = time.perf_counter() - started
            with self._lock:
                self._pace = 0.8 * self._pace + 0.2 * took

    @property
    def pending(self) -> int:
        return self._pending

    def _release(self, _future: object) -> None:
        with self._lock:
            self._pending -= 1

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            ahead = max(0, self._pending - self.workers + 1)  # hashes that must end before this one starts
            wait = ahead / self.workers * self._pace
            if self._pending >= self.workers + self.queue or (ahead and wait > self.max_wait):
                raise HashingBusy(retry_after=max(1, math.ceil(wait)))
            self._pending += 1
        try:
            future = self._executor.submit(self._timed, fn, *args)
        except BaseException:
            self._release(None)
            raise
        # Released when the work ends, not when the caller stops waiting: a client that hangs up
        # does not free a slot while its hash still runs.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password)

    async def verify(self, stored: str | None, password: str) -> tuple[bool, bool]:
        """(valid, needs rehash) of `password` against `stored` (None: no such account)."""
        return await self._run(_verify, stored, password)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
