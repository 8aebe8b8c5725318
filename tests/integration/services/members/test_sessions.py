"""Sign-in sessions on the members service (SQLite and PostgreSQL): short-lived access tokens,
rotating single-use refresh tokens, reuse detection, sign-out, and revocation when a company role is
taken away. Every refusal is a 401 with a message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from sqlalchemy import select, update

from scte.bus.storage import bus_outbox
from scte.contracts.companies import CompanyEmploymentChanged, CompanyRolesChanged
from scte.kit.clock import FixedClock
from scte.kit.runtime import ServiceRuntime
from scte.kit.testing import bearer
from scte.services.members import handlers
from scte.services.members.db import member_sessions, refresh_tokens
from scte.services.members.sessions import hash_secret, prune_sessions

from .test_members_api import PASSWORD, register

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def sign_in(client: httpx.AsyncClient, email: str = "jane@example.com") -> dict[str, Any]:
    response = await client.post("/sessions", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def me(client: httpx.AsyncClient, tokens: dict[str, Any]) -> httpx.Response:
    return await client.get("/me", headers=bearer(tokens["access_token"]))


def refused(response: httpx.Response, *words: str) -> bool:
    body = response.json()
    return response.status_code == 401 and body["error"] == "unauthorized" and all(w in body["message"] for w in words)


async def revocations_published(runtime: ServiceRuntime) -> list[dict[str, Any]]:
    assert runtime.context is not None
    async with runtime.context.engine.connect() as conn:
        rows = await conn.execute(
            select(bus_outbox.c.body)
            .where(bus_outbox.c.event_type == "member.sessions_revoked.v1")
            .order_by(bus_outbox.c.id)
        )
        return [json.loads(body) for (body,) in rows]


async def test_sign_in_starts_a_session_with_a_short_lived_access_token(client: httpx.AsyncClient) -> None:
    jane = await register(client)
    tokens = await sign_in(client)
    assert tokens["expires_in"] == 900
    assert tokens["refresh_token"] and tokens["refresh_expires_in"] > 900
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["sid"] == tokens["session_id"]
    assert claims["rev"] == 0
    assert claims["exp"] - claims["iat"] == 900
    assert claims["sub"] == jane["id"] == tokens["member_id"]
    assert (await me(client, tokens)).status_code == 200


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(
    client: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    await register(client)
    first = await sign_in(client)
    second = (await client.post("/sessions/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert second["session_id"] == first["session_id"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    third = await client.post("/sessions/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200, third.text
    assert (await me(client, third.json())).status_code == 200
    other_session = await sign_in(client)

    # the first refresh token again: someone holds a copy; the whole session ends, for both holders
    reused = await client.post("/sessions/refresh", json={"refresh_token": first["refresh_token"]})
    assert refused(reused, "used already", "revoked"), reused.text
    assert refused(await me(client, third.json()), "revoked")
    again = await client.post("/sessions/refresh", json={"refresh_token": third.json()["refresh_token"]})
    assert refused(again, "revoked"), again.text
    # other sessions of the member are not touched
    assert (await me(client, other_session)).status_code == 200
    published = await revocations_published(runtime)
    assert [(e["session_id"], e["reason"]) for e in published] == [(first["session_id"], "refresh_token_reused")]


async def test_sign_out_ends_the_session_at_once(client: httpx.AsyncClient, runtime: ServiceRuntime) -> None:
    await register(client)
    tokens = await sign_in(client)
    other = await sign_in(client)
    out = await client.post("/sessions/sign-out", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    assert refused(await me(client, tokens), "signed out")
    assert refused(await client.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]}))
    assert (await me(client, other)).status_code == 200
    # signing out twice, or with a token nobody issued, answers the same and changes nothing
    assert (await client.post("/sessions/sign-out", json={"refresh_token": tokens["refresh_token"]})).status_code == 204
    assert (await client.post("/sessions/sign-out", json={"refresh_token": "never-issued"})).status_code == 204
    published = await revocations_published(runtime)
    assert [(e["session_id"], e["reason"]) for e in published] == [(tokens["session_id"], "signed_out")]


async def test_bad_refresh_tokens_are_refused_with_a_message(
    client: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    await register(client)
    tokens = await sign_in(client)
    for body in ({"refresh_token": "forged-" + "x" * 40}, {"refresh_token": tokens["access_token"][:200]}):
        response = await client.post("/sessions/refresh", json=body)
        assert refused(response, "unknown refresh token"), response.text
    for body in ({}, {"refresh_token": ""}, {"refresh_token": "x" * 257}, {"refresh_token": 7}, {"token": "x"}):
        response = await client.post("/sessions/refresh", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["message"]
    # an access token is no refresh token, and a refresh token is no access token
    assert (await client.get("/me", headers=bearer(tokens["refresh_token"]))).status_code == 401

    # expired: the refresh token's own lifetime, then the session's absolute end
    assert runtime.context is not None
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with runtime.context.sessionmaker() as session, session.begin():
        await session.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == hash_secret(tokens["refresh_token"]))
            .values(expires_at=past)
        )
    assert refused(await client.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]}), "expired")
    fresh = await sign_in(client)
    async with runtime.context.sessionmaker() as session, session.begin():
        await session.execute(
            update(member_sessions).where(member_sessions.c.id == fresh["session_id"]).values(expires_at=past)
        )
    assert refused(await client.post("/sessions/refresh", json={"refresh_token": fresh["refresh_token"]}), "expired")


async def test_refresh_tokens_are_stored_hashed(client: httpx.AsyncClient, runtime: ServiceRuntime) -> None:
    await register(client)
    tokens = await sign_in(client)
    assert runtime.context is not None
    async with runtime.context.engine.connect() as conn:
        stored = list((await conn.execute(select(refresh_tokens.c.token_hash))).scalars())
    assert stored == [hash_secret(tokens["refresh_token"])]
    assert tokens["refresh_token"] not in stored


class Collect:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def __call__(self, event: Any, *, topic: str) -> None:
        assert topic == "members"
        self.events.append(event)


async def test_losing_a_company_role_revokes_every_session(client: httpx.AsyncClient, runtime: ServiceRuntime) -> None:
    """The reproduction: a company admin removed from the company kept using the old token."""
    jane = (await register(client))["id"]
    assert runtime.context is not None
    clock = FixedClock(NOW)

    async def roles(*given: str, publish: Collect) -> None:
        assert runtime.context is not None
        event = CompanyRolesChanged(company_id="acme", member_id=jane, roles=given, changed_at=NOW)  # type: ignore[arg-type]
        async with runtime.context.sessionmaker() as session, session.begin():
            await handlers.on_company_roles_changed(event, session, publish, clock)

    granted = Collect()
    await roles("admin", publish=granted)
    assert granted.events == []  # gaining a role revokes nothing: the next sign-in or refresh carries it
    admin = await sign_in(client)
    assert admin["roles"] == ["company_admin", "member"] and admin["company_id"] == "acme"
    laptop, phone = admin, await sign_in(client)

    taken = Collect()
    await roles("report_viewer", publish=taken)
    [event] = taken.events
    assert (event.member_id, event.session_id, event.epoch, event.reason) == (jane, None, 1, "company_role_removed")
    for tokens in (laptop, phone):
        assert refused(await me(client, tokens), "revoked")
        assert refused(await client.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]}))
    # a new sign-in works, at the new epoch, without the role
    after = await sign_in(client)
    assert after["roles"] == ["member"] and after["company_id"] is None
    assert jwt.decode(after["access_token"], options={"verify_signature": False})["rev"] == 1
    assert (await me(client, after)).status_code == 200

    # the same event again (redelivery) revokes nothing more
    again = Collect()
    await roles("report_viewer", publish=again)
    assert again.events == [] and (await me(client, after)).status_code == 200


async def test_an_ended_employment_revokes_an_admins_sessions(
    client: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    jane = (await register(client))["id"]
    assert runtime.context is not None
    clock = FixedClock(NOW)
    publish = Collect()
    async with runtime.context.sessionmaker() as session, session.begin():
        await handlers.on_company_roles_changed(
            CompanyRolesChanged(company_id="acme", member_id=jane, roles=("admin",), changed_at=NOW),
            session,
            publish,
            clock,
        )
    tokens = await sign_in(client)
    ended = CompanyEmploymentChanged(
        company_id="acme",
        member_id=jane,
        employed=False,
        started_on=NOW.date(),
        ended_on=NOW.date(),
        changed_at=NOW,
    )
    async with runtime.context.sessionmaker() as session, session.begin():
        await handlers.on_employment_changed(ended, session, publish, clock)
    assert [e.reason for e in publish.events] == ["employment_ended"]
    assert refused(await me(client, tokens), "revoked")


async def test_ended_sessions_are_pruned_a_day_later(client: httpx.AsyncClient, runtime: ServiceRuntime) -> None:
    await register(client)
    kept, signed_out, expired = await sign_in(client), await sign_in(client), await sign_in(client)
    await client.post("/sessions/sign-out", json={"refresh_token": signed_out["refresh_token"]})
    assert runtime.context is not None
    async with runtime.context.sessionmaker() as session, session.begin():
        await session.execute(
            update(member_sessions)
            .where(member_sessions.c.id == expired["session_id"])
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        assert await prune_sessions(session, datetime.now(UTC)) == 0  # ended, but less than a day ago
        assert await prune_sessions(session, datetime.now(UTC) + timedelta(days=1, minutes=1)) == 2
    async with runtime.context.engine.connect() as conn:
        sessions_left = set((await conn.execute(select(member_sessions.c.id))).scalars())
        tokens_left = set((await conn.execute(select(refresh_tokens.c.session_id))).scalars())
    assert sessions_left == tokens_left == {kept["session_id"]}
    assert (await me(client, kept)).status_code == 200
