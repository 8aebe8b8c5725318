"""A refresh token works once: the site exchanges it once however many requests of the same moment
(a page and its thumbnails) bring it, and they share the answer. The members service is a fake here
(an httpx MockTransport); the browser tests exercise the real one."""

from __future__ import annotations

import asyncio
import json

import httpx

from scte.web.site import Site


def _site(calls: list[str], status: int = 200) -> Site:
    async def members(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content)["refresh_token"])
        await asyncio.sleep(0.05)  # the exchange takes a moment: the other requests arrive meanwhile
        if status != 200:
            return httpx.Response(status, json={"error": "unauthorized", "message": "used already"})
        return httpx.Response(200, json={"access_token": "new-access", "refresh_token": f"new-{len(calls)}"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(members), base_url="http://members")
    return Site.create({"members": client}, secret=b"s" * 32, verifier=None)


async def test_concurrent_requests_share_one_exchange_of_a_refresh_token() -> None:
    calls: list[str] = []
    site = _site(calls)
    answers = await asyncio.gather(*(site._refreshed("old-refresh") for _ in range(8)))
    assert calls == ["old-refresh"]
    assert all(a == {"access_token": "new-access", "refresh_token": "new-1"} for a in answers)
    again = await site._refreshed("another-refresh")  # another session's token: its own exchange
    assert calls == ["old-refresh", "another-refresh"] and again is not None


async def test_a_refused_refresh_is_none_for_every_waiting_request() -> None:
    calls: list[str] = []
    site = _site(calls, status=401)
    answers = await asyncio.gather(*(site._refreshed("stolen") for _ in range(3)))
    assert answers == [None, None, None] and calls == ["stolen"]
