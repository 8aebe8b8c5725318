"""The consumer's slots: returned slots go to one poller, as many as it may take, not one each."""

from __future__ import annotations

import asyncio

from scte.bus.consumer import _Slots


async def test_slots_given_back_together_are_taken_together() -> None:
    slots = _Slots(32)
    assert [await slots.take(10) for _ in range(3)] == [10, 10, 10]
    assert await slots.take(10) == 2
    assert slots.free == 0

    pollers = [asyncio.create_task(slots.take(10)) for _ in range(4)]
    await asyncio.sleep(0)
    slots.give(10)  # a batch of 10 finished: one poller receives up to 10, not four pollers one each
    await asyncio.sleep(0)
    done = [p for p in pollers if p.done()]
    assert [p.result() for p in done] == [10]
    slots.give(3)
    await asyncio.sleep(0)
    assert sorted(p.result() for p in pollers if p.done()) == [3, 10]
    slots.give(0)  # nothing given wakes nobody
    await asyncio.sleep(0)
    assert sum(p.done() for p in pollers) == 2
    for p in pollers:
        p.cancel()
    await asyncio.gather(*pollers, return_exceptions=True)
