"""`scte.bus.greenlets`: SQLAlchemy's `greenlet_spawn` contract (results, errors, `await_`,
cancellation, contextvars, `_require_await`) on reused greenlets. Installed into SQLAlchemy, with
real sessions: tests/integration/bus/test_pooled_greenlets.py."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import weakref
from typing import Any

import pytest
from greenlet import getcurrent
from sqlalchemy.exc import AwaitRequired, MissingGreenlet
from sqlalchemy.util import await_

from scte.bus import greenlets
from scte.bus.greenlets import greenlet_spawn

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


class Boom(Exception):
    pass


def raise_boom() -> None:
    raise Boom("from the sync side")


async def test_returns_the_result_and_reuses_the_greenlet() -> None:
    first = await greenlet_spawn(getcurrent)
    second = await greenlet_spawn(getcurrent)
    assert first is second  # the same worker ran both calls
    assert first is not getcurrent()
    assert await greenlet_spawn(lambda a, b=0: a + b, 2, b=3) == 5


async def test_an_exception_reaches_the_caller_with_its_traceback() -> None:
    with pytest.raises(Boom) as caught:
        await greenlet_spawn(raise_boom)
    assert "raise_boom" in [entry.name for entry in caught.traceback]
    assert await greenlet_spawn(lambda: "still works") == "still works"


async def test_await_inside_runs_on_the_loop_and_errors_are_thrown_in() -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    async def fails() -> None:
        await asyncio.sleep(0)
        raise Boom("from the coroutine")

    def sync_code() -> list[Any]:
        seen: list[Any] = [await_(double(1)), await_(double(2))]
        try:
            await_(fails())
        except Boom as exc:
            seen.append(str(exc))
        return seen

    assert await greenlet_spawn(sync_code) == [2, 4, "from the coroutine"]


async def test_concurrent_calls_get_their_own_greenlets() -> None:
    gate = asyncio.Event()

    def wait_for_gate() -> Any:
        await_(gate.wait())
        return getcurrent()

    tasks = [asyncio.create_task(greenlet_spawn(wait_for_gate)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    workers = await asyncio.gather(*tasks)
    assert len({id(w) for w in workers}) == 5
    # Afterwards they are kept for the next calls: five calls in a row use one of them.
    for _ in range(5):
        assert await greenlet_spawn(getcurrent) in workers


async def test_the_pool_keeps_at_most_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(greenlets, "POOL_LIMIT", 3)
    gate = asyncio.Event()
    tasks = [asyncio.create_task(greenlet_spawn(lambda: await_(gate.wait()))) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks)
    assert len(greenlets._free()) <= 3


async def test_contextvars_of_the_calling_task_are_seen() -> None:
    async def one(value: str) -> str:
        request_id.set(value)
        await asyncio.sleep(0)
        return await greenlet_spawn(lambda: (await_(asyncio.sleep(0)), request_id.get())[1])

    assert await asyncio.gather(one("a"), one("b"), one("c")) == ["a", "b", "c"]
    assert await greenlet_spawn(request_id.get) == "none"  # nothing left behind in the pooled greenlet


async def test_cancellation_reaches_the_sync_code_and_the_greenlet_is_reused() -> None:
    events: list[str] = []
    started = asyncio.Event()

    def waits_forever() -> None:
        try:
            await_(asyncio.sleep(0))
            started.set()
            await_(asyncio.Event().wait())
        except asyncio.CancelledError:
            events.append("cancelled in the sync code")
            raise
        finally:
            events.append("finally ran")

    task = asyncio.create_task(greenlet_spawn(waits_forever))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["cancelled in the sync code", "finally ran"]
    assert await greenlet_spawn(lambda: 42) == 42


async def test_closing_the_coroutine_mid_call_unwinds_the_sync_code() -> None:
    unwound: list[bool] = []
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def waits() -> None:
        try:
            await_(future)
        finally:
            unwound.append(True)

    coro = greenlet_spawn(waits)
    coro.send(None)  # runs up to the future
    coro.close()
    assert unwound == [True]
    future.cancel()


async def test_require_await_as_sqlalchemy() -> None:
    with pytest.raises(AwaitRequired):
        await greenlet_spawn(lambda: 1, _require_await=True)
    assert await greenlet_spawn(lambda: await_(asyncio.sleep(0, result=7)), _require_await=True) == 7


async def test_nested_spawn_from_an_awaited_coroutine() -> None:
    async def inner() -> int:
        return await greenlet_spawn(lambda: await_(asyncio.sleep(0, result=20)) + 1)

    assert await greenlet_spawn(lambda: await_(inner()) + 1) == 22


async def test_await_outside_a_spawned_call_still_fails_as_sqlalchemy_does() -> None:
    coro = asyncio.sleep(0)
    with pytest.raises(MissingGreenlet):
        await_(coro)


async def test_an_idle_greenlet_does_not_keep_the_last_result_alive() -> None:
    class Result:
        pass

    made = await greenlet_spawn(Result)
    ref = weakref.ref(made)
    del made
    gc.collect()
    assert ref() is None


def test_each_thread_has_its_own_greenlets() -> None:
    results: list[Any] = []

    def in_thread() -> None:
        results.append(asyncio.run(greenlet_spawn(lambda: await_(asyncio.sleep(0, result="thread")))))

    asyncio.run(greenlet_spawn(getcurrent))  # a worker left in this thread's pool
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert results == ["thread"]
