"""Password change (the current password required) and reset by mail (single use, 30 minutes), on
SQLite and PostgreSQL: both revoke every session of the member; every bad input is a 4xx with a
message, and the reset request answers the same whether or not the account exists."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select, update

from scte.bus.storage import bus_outbox
from scte.kit.runtime import ServiceRuntime
from scte.kit.testing import bearer
from scte.services.members.db import password_resets

from .test_members_api import PASSWORD, register
from .test_sessions import me, refused, sign_in

NEW_PASSWORD = "a different long passphrase 7"


async def published(runtime: ServiceRuntime, event_type: str) -> list[dict[str, Any]]:
    assert runtime.context is not None
    async with runtime.context.engine.connect() as conn:
        rows = await conn.execute(
            select(bus_outbox.c.body).where(bus_outbox.c.event_type == event_type).order_by(bus_outbox.c.id)
        )
        return [json.loads(body) for (body,) in rows]


def error(response: httpx.Response, status: int, code: str, *words: str) -> bool:
    body = response.json()
    return response.status_code == status and body["error"] == code and all(w in body["message"] for w in words)


async def test_changing_the_password_needs_the_current_one_and_revokes_every_session(
    client: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    jane = (await register(client))["id"]
    john = (await register(client, "john@example.com"))["id"]
    laptop, phone = await sign_in(client), await sign_in(client)
    path = f"/members/{jane}/password"
    headers = bearer(laptop["access_token"])

    wrong = await client.post(
        path, json={"current_password": "not it at all 123", "new_password": NEW_PASSWORD}, headers=headers
    )
    assert error(wrong, 400, "wrong_password", "current password is wrong"), wrong.text
    weak = await client.post(path, json={"current_password": PASSWORD, "new_password": "short"}, headers=headers)
    assert error(weak, 400, "bad_request", "new password", "12 characters"), weak.text
    same = await client.post(path, json={"current_password": PASSWORD, "new_password": PASSWORD}, headers=headers)
    assert error(same, 400, "bad_request", "different"), same.text
    for body in (
        {"new_password": NEW_PASSWORD},
        {"current_password": PASSWORD},
        {"current_password": PASSWORD, "new_password": "x" * 129},
    ):
        assert (await client.post(path, json=body, headers=headers)).status_code == 422
    # another member, even knowing the password, and no token at all
    john_tokens = await sign_in(client, "john@example.com")
    other = await client.post(
        path,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(john_tokens["access_token"]),
    )
    assert error(other, 403, "forbidden"), other.text
    assert (
        await client.post(path, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    ).status_code == 401
    assert (await me(client, laptop)).status_code == 200  # nothing of the above changed anything

    changed = await client.post(
        path, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}, headers=headers
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    assert fresh["session_id"] not in (laptop["session_id"], phone["session_id"])
    assert (await me(client, fresh)).status_code == 200
    for old in (laptop, phone):
        assert refused(await me(client, old), "revoked")
        assert refused(await client.post("/sessions/refresh", json={"refresh_token": old["refresh_token"]}))
    assert (await me(client, john_tokens)).status_code == 200  # another member is not touched

    old_password = await client.post("/sessions", json={"email": "jane@example.com", "password": PASSWORD})
    assert old_password.status_code == 401
    new = await client.post("/sessions", json={"email": "jane@example.com", "password": NEW_PASSWORD})
    assert new.status_code == 200
    [event] = await published(runtime, "member.sessions_revoked.v1")
    assert (event["member_id"], event["session_id"], event["epoch"], event["reason"]) == (
        jane,
        None,
        1,
        "password_changed",
    )
    assert john  # used above


async def reset_tokens(runtime: ServiceRuntime) -> list[str]:
    """The tokens of the links mailed so far (from the events the notifications service receives)."""
    events = await published(runtime, "member.password_reset_requested.v1")
    out = []
    for event in events:
        url = urlsplit(event["reset_url"])
        assert f"{url.scheme}://{url.netloc}" == runtime.settings.public_url.rstrip("/")
        assert url.path == "/password-reset"
        out.append(parse_qs(url.query)["token"][0])
    return out


async def test_a_reset_request_answers_the_same_for_any_address(
    client: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    jane = (await register(client))["id"]
    answers = [
        await client.post("/password-resets", json={"email": email})
        for email in ("jane@example.com", " JANE@example.com", "nobody@example.com", "not an address")
    ]
    assert {(a.status_code, a.text) for a in answers} == {(answers[0].status_code, answers[0].text)}
    assert answers[0].status_code == 202 and "30 minutes" in answers[0].json()["message"]
    events = await published(runtime, "member.password_reset_requested.v1")
    assert [e["member_id"] for e in events] == [jane, jane]  # the two spellings of Jane's address only
    assert len(set(await reset_tokens(runtime))) == 2
    # at most three links outstanding: the fourth request sends nothing, and still answers the same
    for _ in range(2):
        again = await client.post("/password-resets", json={"email": "jane@example.com"})
        assert (again.status_code, again.text) == (answers[0].status_code, answers[0].text)
    assert len(await published(runtime, "member.password_reset_requested.v1")) == 3
    for body in ({}, {"email": ""}, {"email": "x" * 300}, {"mail": "jane@example.com"}):
        assert (await client.post("/password-resets", json=body)).status_code == 422


async def test_a_reset_token_works_once_within_30_minutes_and_revokes_every_session(
    client: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    await register(client)
    tokens = await sign_in(client)
    for _ in range(2):
        assert (await client.post("/password-resets", json={"email": "jane@example.com"})).status_code == 202
    first, second = await reset_tokens(runtime)

    forged = await client.post("/password-resets/confirm", json={"token": "forged" * 8, "new_password": NEW_PASSWORD})
    assert error(forged, 400, "invalid_reset_token", "not valid"), forged.text
    weak = await client.post("/password-resets/confirm", json={"token": first, "new_password": "abc"})
    assert error(weak, 400, "bad_request", "new password"), weak.text
    assert (await me(client, tokens)).status_code == 200  # a refused attempt spends nothing

    done = await client.post("/password-resets/confirm", json={"token": first, "new_password": NEW_PASSWORD})
    assert done.status_code == 200, done.text
    assert refused(await me(client, tokens), "revoked")
    assert refused(await client.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]}))
    assert (await client.post("/sessions", json={"email": "jane@example.com", "password": PASSWORD})).status_code == 401
    assert (
        await client.post("/sessions", json={"email": "jane@example.com", "password": NEW_PASSWORD})
    ).status_code == 200
    reasons = [e["reason"] for e in await published(runtime, "member.sessions_revoked.v1")]
    assert reasons == ["password_reset"]

    # single use, and the reset spent the other outstanding link too
    for token in (first, second):
        again = await client.post(
            "/password-resets/confirm", json={"token": token, "new_password": "yet another passphrase 9"}
        )
        assert error(again, 400, "invalid_reset_token", "used already"), again.text

    # 30 minutes
    assert (await client.post("/password-resets", json={"email": "jane@example.com"})).status_code == 202
    late = (await reset_tokens(runtime))[-1]
    assert runtime.context is not None
    async with runtime.context.sessionmaker() as session, session.begin():
        row = (
            await session.execute(
                select(password_resets.c.created_at, password_resets.c.expires_at).where(
                    password_resets.c.used_at.is_(None)
                )
            )
        ).one()
        assert row.expires_at - row.created_at == timedelta(minutes=30)
        await session.execute(
            update(password_resets)
            .where(password_resets.c.used_at.is_(None))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    expired = await client.post(
        "/password-resets/confirm", json={"token": late, "new_password": "yet another passphrase 9"}
    )
    assert error(expired, 400, "invalid_reset_token", "expired"), expired.text
    for body in ({"token": late}, {"new_password": NEW_PASSWORD}, {"token": "", "new_password": NEW_PASSWORD}):
        assert (await client.post("/password-resets/confirm", json=body)).status_code == 422


async def test_reset_tokens_are_stored_hashed(client: httpx.AsyncClient, runtime: ServiceRuntime) -> None:
    await register(client)
    assert (await client.post("/password-resets", json={"email": "jane@example.com"})).status_code == 202
    [token] = await reset_tokens(runtime)
    assert runtime.context is not None
    async with runtime.context.engine.connect() as conn:
        stored = list((await conn.execute(select(password_resets.c.token_hash))).scalars())
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64
