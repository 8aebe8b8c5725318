"""The consumer's acknowledgements: gathered into DeleteMessageBatch calls of up to 10, each caller
answered when the broker has answered for its own receipts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from scte.bus.consumer import _Deletes
from scte.bus.transport import TransportError


class Broker:
    """Records delete calls; each waits for `release` and fails if it carries a receipt in `refuse`."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        self.refuse: set[str] = set()

    async def delete(self, queue: str, receipts: Sequence[str]) -> None:
        self.calls.append(list(receipts))
        await self.release.wait()
        if self.refuse & set(receipts):
            raise TransportError("refused", code="ReceiptHandleIsInvalid")


async def test_alone_a_delete_goes_out_at_once() -> None:
    broker = Broker()
    deletes = _Deletes(broker, "q")  # type: ignore[arg-type]
    call = asyncio.create_task(deletes.delete(["a", "b"]))
    await asyncio.sleep(0.01)
    assert broker.calls == [["a", "b"]]
    assert not call.done()  # answered only when the broker has answered
    broker.release.set()
    await call
    await deletes.delete([])  # nothing to acknowledge: no call
    assert broker.calls == [["a", "b"]]


async def test_deletes_queued_while_one_is_in_flight_go_together_ten_per_call() -> None:
    broker = Broker()
    deletes = _Deletes(broker, "q")  # type: ignore[arg-type]
    first = asyncio.create_task(deletes.delete(["r0"]))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(deletes.delete([f"r{i}-{j}" for j in range(i)])) for i in (3, 4, 8)]
    await asyncio.sleep(0.01)
    assert broker.calls == [["r0"]] and not any(task.done() for task in later)
    broker.release.set()
    await asyncio.gather(first, *later)
    queued = [f"r{i}-{j}" for i in (3, 4, 8) for j in range(i)]
    assert broker.calls[1:] == [queued[:10], queued[10:]]


async def test_a_caller_gets_the_error_of_any_call_that_carried_its_receipts() -> None:
    broker = Broker()
    deletes = _Deletes(broker, "q")  # type: ignore[arg-type]
    first = asyncio.create_task(deletes.delete(["r0"]))
    await asyncio.sleep(0.01)
    fine = asyncio.create_task(deletes.delete([f"a{j}" for j in range(5)]))
    spanning = asyncio.create_task(deletes.delete([f"b{j}" for j in range(10)]))  # 5 in each call
    failing_alone = asyncio.create_task(deletes.delete(["c0"]))
    await asyncio.sleep(0.01)
    broker.refuse = {"b9"}  # the second call fails: it carries b5..b9 and c0
    broker.release.set()
    await first
    await fine
    with pytest.raises(TransportError, match="refused"):
        await spanning
    with pytest.raises(TransportError, match="refused"):
        await failing_alone
    assert broker.calls[1:] == [
        [f"a{j}" for j in range(5)] + [f"b{j}" for j in range(5)],
        [*(f"b{j}" for j in range(5, 10)), "c0"],
    ]


async def test_a_cancelled_caller_leaves_the_others_answered() -> None:
    broker = Broker()
    deletes = _Deletes(broker, "q")  # type: ignore[arg-type]
    first = asyncio.create_task(deletes.delete(["r0"]))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(deletes.delete(["x"]))
    stays = asyncio.create_task(deletes.delete(["y"]))
    await asyncio.sleep(0.01)
    gone.cancel()
    broker.release.set()
    await asyncio.gather(first, stays)
    assert gone.cancelled()
    assert broker.calls == [["r0"], ["x", "y"]]  # the receipt still went: a cancelled wait is not a cancelled delete
