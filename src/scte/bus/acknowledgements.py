"""The consumer's flow control: acknowledgements gathered into `DeleteMessageBatch` calls (`_Deletes`),
and the free places for messages that the pollers take (`_Slots`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from scte.bus.transport import Transport, TransportError

log = logging.getLogger("scte.bus.consumer")  # the consumer's log, as before the split


class _Ack:
    """One `_Deletes.delete()` call: answered when the broker has answered for all its receipts."""

    __slots__ = ("future", "left")

    def __init__(self, future: asyncio.Future[None], left: int) -> None:
        self.future = future
        self.left = left  # receipts not yet acknowledged by the broker


class _Deletes:
    """Acknowledgements of one queue, gathered into `DeleteMessageBatch` calls.

    Handlers that finish while a delete call is in flight queue their receipts; when it returns, the
    next call carries all of them (up to 10 per call, the calls concurrent). Alone, a delete goes out
    at once. `delete()` returns when the broker has answered for its receipts, as a direct call would,
    and raises the `TransportError` of the call that carried them.

    One future per `delete()` (an `_Ack` counting its receipts down), not one per receipt gathered:
    a batch of 10 settles with one future instead of ten and a `gather`."""

    def __init__(self, transport: Transport, queue: str) -> None:
        self.transport = transport
        self.queue = queue
        self._pending: list[tuple[str, _Ack]] = []
        self._flushing = False

    async def delete(self, receipts: Sequence[str]) -> None:
        if not receipts:
            return
        ack = _Ack(asyncio.get_running_loop().create_future(), len(receipts))
        self._pending.extend([(receipt, ack) for receipt in receipts])
        if not self._flushing:
            self._flushing = True
            flush = asyncio.ensure_future(self._flush())
            flush.add_done_callback(_quiet)
        await ack.future

    async def _flush(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending, []
                if len(pending) <= 10:  # the usual case: one call, no gather
                    await self._send(pending)
                    continue
                chunks = [pending[i : i + 10] for i in range(0, len(pending), 10)]
                await asyncio.gather(*(self._send(chunk) for chunk in chunks))
        finally:
            self._flushing = False
            for _receipt, ack in self._pending:  # only if cancelled: fail what is left
                if not ack.future.done():
                    ack.future.set_exception(TransportError("the delete was cancelled"))
            self._pending = []

    async def _send(self, chunk: list[tuple[str, _Ack]]) -> None:
        try:
            await self.transport.delete(self.queue, [receipt for receipt, _ack in chunk])
        except BaseException as exc:
            error = exc if isinstance(exc, TransportError) else TransportError(f"delete failed: {exc!r}")
            for _receipt, ack in chunk:
                if not ack.future.done():
                    ack.future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        for _receipt, ack in chunk:
            ack.left -= 1
            if ack.left == 0 and not ack.future.done():
                ack.future.set_result(None)


class _Slots:
    """The consumer's free places for messages, taken by the pollers up to 10 at a time.

    Not an `asyncio.Semaphore`: when a batch of 10 finishes and its slots come back, a semaphore
    wakes one waiting poller per slot, and each of them, finding the others still queued, takes one
    (`locked()` is true while any waiter is queued): four pollers receiving one message each, and
    four single-message transactions instead of one batch (at saturation a quarter of the messages
    went that way). Here every waiting poller is woken and the first to run takes all it may."""

    def __init__(self, free: int) -> None:
        self.free = free
        self._freed = asyncio.Event()

    async def take(self, most: int) -> int:
        """At least one slot and at most `most`: as many as are free."""
        while self.free == 0:
            self._freed.clear()
            await self._freed.wait()
        taken = min(most, self.free)
        self.free -= taken
        return taken

    def give(self, count: int) -> None:
        if count > 0:
            self.free += count
            self._freed.set()


def _quiet(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("consumer: delete flush failed", exc_info=task.exception())
