"""Accounts against abuse: the password policy and look-alike e-mails through the API, sign-in and
registration limits (429 with Retry-After, per account and per client address, the address as the
gateway states it), and the bounded hashing pool (503 with Retry-After, /health still answering)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from scte.kit.forwarding import GATEWAY_SECRET_HEADER, ensure_gateway_secret, gateway_secret_path
from scte.kit.runtime import ServiceRuntime
from scte.kit.testing import api_client, bearer, database_url
from scte.kit.testing import test_settings as settings_in
from scte.services.members.limits import LimitSettings
from scte.services.members.service import build_runtime

PASSWORD = "correct horse battery staple"


@asynccontextmanager
async def members(tmp_path: Path, **limits: Any) -> AsyncIterator[tuple[ServiceRuntime, httpx.AsyncClient]]:
    """The members service on SQLite (the limits do not depend on the database) with these limits."""
    async with database_url("sqlite", tmp_path, "members") as url:
        runtime = build_runtime(settings_in(tmp_path, database_urls={"members": url}), limits=LimitSettings(**limits))
        await runtime.start(consume=False)
        try:
            async with api_client(runtime) as client:
                yield runtime, client
        finally:
            await runtime.stop()


def via_gateway(runtime: ServiceRuntime, address: str) -> dict[str, str]:
    """The headers the gateway adds for a visitor from `address`."""
    path = gateway_secret_path(runtime.settings)
    ensure_gateway_secret(path)
    return {"X-Forwarded-For": address, GATEWAY_SECRET_HEADER: path.read_text()}


async def register(client: httpx.AsyncClient, email: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
    return await client.post(
        "/members", json={"email": email, "password": password, "display_name": "Jane Doe"}, headers=headers
    )


async def sign_in(client: httpx.AsyncClient, email: str, password: str, headers: dict[str, str] | None = None) -> int:
    response = await client.post("/sessions", json={"email": email, "password": password}, headers=headers or {})
    if response.status_code == 429:
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"] == "too_many_requests"
    return response.status_code


# -- passwords, e-mail addresses and names through the API ------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["abababababab", "qwertyqwerty", "123412341234", "P@ssw0rd2024", "janedoe-2024", "Jane Doe 2024!", "short"],
)
async def test_weak_passwords_are_refused_at_registration(tmp_path: Path, password: str) -> None:
    async with members(tmp_path) as (_runtime, client):
        response = await register(client, "janedoe@example.com", password)
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith("password: ")


async def test_passwords_are_taken_exactly_as_typed(tmp_path: Path) -> None:
    async with members(tmp_path) as (_runtime, client):
        spaced = "  " + PASSWORD + " "
        assert (await register(client, "jane@example.com", spaced)).status_code == 201
        assert await sign_in(client, "jane@example.com", PASSWORD) == 401
        assert await sign_in(client, "jane@example.com", spaced) == 200


@pytest.mark.parametrize("spelling", ["\u017ftaff@scte.example", "\uff53taff@scte.example", "STAFF@scte.example"])
async def test_a_lookalike_email_meets_the_existing_account(tmp_path: Path, spelling: str) -> None:
    async with members(tmp_path) as (_runtime, client):
        assert (await register(client, "staff@scte.example")).status_code == 201
        again = await register(client, spelling)
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "email_taken"
        assert await sign_in(client, spelling, PASSWORD) == 200  # the same account, however spelt


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("staff@scte.example.", "Jane Doe"),
        ("\u0455taff@scte.example", "Jane Doe"),
        ("jane@example.com", "Jane\x00Doe"),
        ("jane@example.com", "\u202eeoD enaJ"),
        ("jane@example.com", "Jane\u2067Doe"),
    ],
)
async def test_unusable_emails_and_names_are_refused(tmp_path: Path, email: str, name: str) -> None:
    async with members(tmp_path) as (_runtime, client):
        body = {"email": email, "password": PASSWORD, "display_name": name}
        response = await client.post("/members", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["message"]


async def test_a_name_change_refuses_bidi_characters(tmp_path: Path) -> None:
    async with members(tmp_path) as (_runtime, client):
        created = (await register(client, "jane@example.com")).json()
        token = (await client.post("/sessions", json={"email": "jane@example.com", "password": PASSWORD})).json()
        patched = await client.patch(
            f"/members/{created['id']}",
            json={"display_name": "Jane\u202eDoe"},
            headers=bearer(token["access_token"]),
        )
        assert patched.status_code == 400, patched.text
        assert "bidirectional" in patched.json()["message"]


# -- rate limits ---------------------------------------------------------------------------------------


async def test_200_wrong_passwords_lock_the_account_and_the_right_one_waits(tmp_path: Path) -> None:
    async with members(tmp_path) as (runtime, client):
        assert (await register(client, "jane@example.com")).status_code == 201
        statuses = [await sign_in(client, "jane@example.com", f"wrong guess {i}") for i in range(200)]
        assert statuses[:5] == [401] * 5
        assert set(statuses[5:]) == {429}
        refused = await client.post("/sessions", json={"email": "jane@example.com", "password": PASSWORD})
        assert refused.status_code == 429
        assert 800 < int(refused.headers["retry-after"]) <= 900  # 5 per 15 minutes
        # other accounts are not locked with it (from another address: this one has failed a lot)
        assert (await register(client, "john@example.com")).status_code == 201
        assert await sign_in(client, "john@example.com", PASSWORD, via_gateway(runtime, "203.0.113.9")) == 200


async def test_the_right_password_works_again_once_the_window_passes(tmp_path: Path) -> None:
    async with members(tmp_path, signin_per_account="3/30seconds") as (_runtime, client):
        assert (await register(client, "jane@example.com")).status_code == 201
        body = {"email": "jane@example.com", "password": "wrong guess here"}
        for _ in range(8):  # 3 failures within the window, then 429 (on a loaded machine a hash may take seconds)
            refused = await client.post("/sessions", json=body)
            if refused.status_code == 429:
                break
            assert refused.status_code == 401, refused.text
        assert refused.status_code == 429
        await asyncio.sleep(int(refused.headers["retry-after"]) + 0.5)
        assert await sign_in(client, "jane@example.com", PASSWORD) == 200
        # a success forgives the failures: three more wrong ones are answered 401, not 429
        assert [await sign_in(client, "jane@example.com", "wrong again here") for _ in range(3)] == [401] * 3


async def test_concurrent_guesses_cannot_slip_past_the_account_limit(tmp_path: Path) -> None:
    async with members(tmp_path) as (_runtime, client):
        assert (await register(client, "jane@example.com")).status_code == 201
        statuses = await asyncio.gather(*(sign_in(client, "jane@example.com", f"guess {i}") for i in range(32)))
        assert sorted(statuses).count(401) == 5
        assert statuses.count(429) == 27


async def test_failures_per_address_across_accounts(tmp_path: Path) -> None:
    async with members(tmp_path, signin_failures_per_address="10/15minutes") as (runtime, client):
        attacker, visitor = via_gateway(runtime, "198.51.100.7"), via_gateway(runtime, "198.51.100.8")
        statuses = [await sign_in(client, f"user{i}@example.com", "some guess here", attacker) for i in range(12)]
        assert statuses == [401] * 10 + [429] * 2
        assert await sign_in(client, "user99@example.com", "some guess here", visitor) == 401
        # the attacker cannot pose as someone else: an X-Forwarded-For without the gateway's secret is ignored
        spoofed = {"X-Forwarded-For": "198.51.100.99"}
        limited = {**spoofed, GATEWAY_SECRET_HEADER: "not the secret"}
        assert await sign_in(client, "user98@example.com", "some guess here", attacker | spoofed) == 401
        for headers in (attacker | limited, {**limited, GATEWAY_SECRET_HEADER: ""}):
            # the peer (the in-process client, 127.0.0.1) is who is counted: it has its own room
            assert await sign_in(client, "user97@example.com", "some guess here", headers) in (401, 429)
        assert await sign_in(client, "user96@example.com", "some guess here", attacker) == 429


async def test_forwarded_addresses_are_believed_from_the_gateway_only(tmp_path: Path) -> None:
    async with members(tmp_path, signin_failures_per_address="2/15minutes") as (runtime, client):
        forged = {"X-Forwarded-For": "192.0.2.1", GATEWAY_SECRET_HEADER: "guessed"}
        statuses = [
            await sign_in(
                client, "nobody@example.com", "some guess here", {**forged, "X-Forwarded-For": f"192.0.2.{i}"}
            )
            for i in range(4)
        ]
        assert statuses == [401, 401, 429, 429]  # all counted on the peer, whatever they claimed
        assert await sign_in(client, "nobody@example.com", "some guess here", via_gateway(runtime, "192.0.2.50")) == 401


async def test_registrations_per_address(tmp_path: Path) -> None:
    assert LimitSettings().register_per_address == "50/hour"  # the default; a smaller one here keeps the test short
    async with members(tmp_path, register_per_address="5/hour") as (runtime, client):
        statuses = [(await register(client, f"new{i}@example.com")).status_code for i in range(6)]
        assert statuses == [201] * 5 + [429]
        refused = await register(client, "another@example.com")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 3000  # an hour's window
        other = await register(client, "fromelsewhere@example.com", **via_gateway(runtime, "203.0.113.20"))
        assert other.status_code == 201, other.text


# -- the bounded hashing pool --------------------------------------------------------------------------


async def test_a_flood_of_sign_ins_is_answered_503_and_health_stays_up(tmp_path: Path) -> None:
    async with members(tmp_path, hash_workers=1, hash_queue=2, hash_max_wait=600, signin_per_address="1000/minute") as (
        runtime,
        client,
    ):
        addresses = [via_gateway(runtime, f"203.0.113.{i}") for i in range(32)]
        flood = [
            asyncio.create_task(
                client.post("/sessions", json={"email": f"u{i}@example.com", "password": "some guess here"}, headers=h)
            )
            for i, h in enumerate(addresses)
        ]
        await asyncio.sleep(0.05)
        health = await client.get("/health")
        answers = await asyncio.gather(*flood)
        assert health.status_code == 200
        statuses = sorted(r.status_code for r in answers)
        assert set(statuses) == {401, 503}, statuses
        assert statuses.count(401) >= 3  # the workers and the queue
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["error"] == "unavailable"
        hashing = runtime.context.extras["hashing"] if runtime.context else None
        assert hashing is not None and hashing.pending == 0


async def test_the_gateway_states_the_visitor_and_ignores_what_the_visitor_claims(tmp_path: Path) -> None:
    from scte.kit.forwarding import read_gateway_secret
    from scte.web.gateway import create_gateway

    async with members(tmp_path, signin_failures_per_address="3/15minutes") as (runtime, _client):
        path = gateway_secret_path(runtime.settings)
        ensure_gateway_secret(path)
        gateway = create_gateway(
            {"members": "http://members"},
            transport=httpx.ASGITransport(app=runtime.app),
            gateway_secret=read_gateway_secret(path),
        )

        @asynccontextmanager
        async def visitor(address: str) -> AsyncIterator[httpx.AsyncClient]:
            transport = httpx.ASGITransport(app=gateway, client=(address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                yield client

        async def attempt(client: httpx.AsyncClient, **headers: str) -> int:
            body = {"email": "nobody@example.com", "password": "some guess here"}
            return (await client.post("/api/members/sessions", json=body, headers=headers)).status_code

        async with gateway.router.lifespan_context(gateway):
            async with visitor("198.51.100.1") as attacker:
                statuses = [await attempt(attacker, **{"X-Forwarded-For": f"192.0.2.{i}"}) for i in range(5)]
                assert statuses == [401, 401, 401, 429, 429]  # its own address counted, not what it claimed
                assert await attempt(attacker, **{GATEWAY_SECRET_HEADER: "guess", "X-Forwarded-For": "1.2.3.4"}) == 429
            async with visitor("198.51.100.2") as other:
                assert await attempt(other) == 401
