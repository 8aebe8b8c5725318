"""The members REST API: registration, sign-in, own-record access, profile changes, bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from scte.bus.storage import bus_outbox
from scte.kit.runtime import ServiceRuntime
from scte.kit.testing import bearer, issuer

PASSWORD = "correct horse battery staple"


async def register(client: httpx.AsyncClient, email: str = "jane@example.com", **extra: Any) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD, "display_name": "Jane Doe", **extra}
    response = await client.post("/members", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def sign_in(client: httpx.AsyncClient, email: str = "jane@example.com") -> str:
    response = await client.post("/sessions", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def outbox_types(runtime: ServiceRuntime) -> list[str]:
    assert runtime.context is not None
    async with runtime.context.engine.connect() as conn:
        return list((await conn.execute(select(bus_outbox.c.event_type).order_by(bus_outbox.c.id))).scalars())


async def test_register_sign_in_and_read_own_record(client: httpx.AsyncClient, runtime: ServiceRuntime) -> None:
    member = await register(client, "  Jane@Example.COM ", city="Exton", country="us", listed_in_directory=True)
    assert member["email"] == "jane@example.com"
    assert member["country"] == "US"
    assert member["status"] == "prospect"
    assert member["roles"] == ["member"]
    assert "password_hash" not in member
    assert await outbox_types(runtime) == ["member.registered.v1", "member.profile_updated.v1"]

    token = await sign_in(client, "JANE@example.com")
    own = await client.get(f"/members/{member['id']}", headers=bearer(token))
    assert own.status_code == 200
    assert own.json()["display_name"] == "Jane Doe"
    me = await client.get("/me", headers=bearer(token))
    assert me.json()["id"] == member["id"]
    membership = await client.get(f"/members/{member['id']}/membership", headers=bearer(token))
    assert membership.json() == {
        "member_since": None,
        "term_start": None,
        "term_end": None,
        "lapses_on": None,
        "status": "prospect",
    }


async def test_a_member_cannot_read_or_change_another(client: httpx.AsyncClient) -> None:
    jane = await register(client, "jane@example.com")
    john = await register(client, "john@example.com")
    token = await sign_in(client, "jane@example.com")
    for method, path, body in (
        ("GET", f"/members/{john['id']}", None),
        ("PATCH", f"/members/{john['id']}", {"city": "Nowhere"}),
        ("GET", f"/members/{john['id']}/membership", None),
        ("GET", "/members", None),
    ):
        response = await client.request(method, path, json=body, headers=bearer(token))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "forbidden"
    assert (await client.get(f"/members/{jane['id']}", headers=bearer(token))).status_code == 200


async def test_requests_without_a_valid_token_are_refused(client: httpx.AsyncClient, runtime: ServiceRuntime) -> None:
    jane = await register(client)
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        response = await client.get(f"/members/{jane['id']}", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    # a token signed with another key
    other = issuer(runtime.settings.model_copy(update={"data_dir": runtime.settings.data_dir / "elsewhere"}))
    forged = other.issue(jane["id"])
    assert (await client.get(f"/members/{jane['id']}", headers=bearer(forged))).status_code == 401


async def test_staff_see_everyone(client: httpx.AsyncClient, runtime: ServiceRuntime) -> None:
    jane = await register(client)
    staff = issuer(runtime.settings).issue("staff-1", ["member", "staff"])
    assert (await client.get(f"/members/{jane['id']}", headers=bearer(staff))).status_code == 200
    listed = await client.get("/members", headers=bearer(staff))
    assert listed.status_code == 200
    assert listed.json()["total"] == 1
    missing = await client.get("/members/nobody", headers=bearer(staff))
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


async def test_profile_update_publishes_once(client: httpx.AsyncClient, runtime: ServiceRuntime) -> None:
    jane = await register(client)
    token = await sign_in(client)
    changed = await client.patch(
        f"/members/{jane['id']}", json={"city": "Exton", "listed_in_directory": True}, headers=bearer(token)
    )
    assert changed.status_code == 200
    assert changed.json()["city"] == "Exton"
    same = await client.patch(f"/members/{jane['id']}", json={"city": "Exton"}, headers=bearer(token))
    assert same.status_code == 200
    assert await outbox_types(runtime) == ["member.registered.v1", "member.profile_updated.v1"]


async def test_sign_in_refusals(client: httpx.AsyncClient) -> None:
    await register(client)
    for body in (
        {"email": "jane@example.com", "password": "wrong password here"},
        {"email": "nobody@example.com", "password": PASSWORD},
        {"email": "not an email", "password": PASSWORD},
    ):
        response = await client.post("/sessions", json=body)
        assert response.status_code == 401, body
        assert response.json()["message"] == "wrong email or password"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"email": "x@example.com", "password": "short", "display_name": "X"}, 400, "bad_request"),
        ({"email": "x@example.com", "password": "password1234", "display_name": "X"}, 400, "bad_request"),
        ({"email": "not-an-email", "password": PASSWORD, "display_name": "X"}, 400, "bad_request"),
        ({"email": "x@example.com", "password": PASSWORD, "display_name": "   "}, 422, "invalid_request"),
        ({"email": "x@example.com", "password": PASSWORD, "display_name": "X", "country": "U1"}, 400, "bad_request"),
        ({"email": "x@example.com", "password": PASSWORD}, 422, "invalid_request"),
        ({"email": "x@example.com", "password": PASSWORD, "display_name": "X", "roles": ["staff"]}, 422, None),
        ({"email": 5, "password": PASSWORD, "display_name": "X"}, 422, "invalid_request"),
    ],
)
async def test_bad_registrations(
    client: httpx.AsyncClient, body: dict[str, Any], status: int, error: str | None
) -> None:
    response = await client.post("/members", json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["message"]
    if error is not None:
        assert payload["error"] == error


async def test_duplicate_email_and_malformed_requests(client: httpx.AsyncClient) -> None:
    jane = await register(client)
    duplicate = await client.post(
        "/members", json={"email": "JANE@example.com", "password": PASSWORD, "display_name": "Other"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "email_taken"
    malformed = await client.post("/members", content=b"{not json", headers={"content-type": "application/json"})
    assert malformed.status_code == 422
    token = await sign_in(client)
    for body in ({"display_name": None}, {"country": "usa"}, {"listed_in_directory": "maybe"}, {"unknown": 1}):
        response = await client.patch(f"/members/{jane['id']}", json=body, headers=bearer(token))
        assert 400 <= response.status_code < 500, (body, response.text)
        assert response.json()["message"]


async def test_health_and_openapi(client: httpx.AsyncClient) -> None:
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["database"] == "ok"
    schema = (await client.get("/openapi.json")).json()
    assert "/members/{member_id}" in schema["paths"]


async def test_staff_set_a_members_roles_and_nobody_else_may(
    client: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    jane = await register(client)
    staff = issuer(runtime.settings).issue("staff-1", ["member", "staff"])
    made = await client.put(f"/members/{jane['id']}/roles", json={"roles": ["staff"]}, headers=bearer(staff))
    assert made.status_code == 200, made.text
    assert made.json()["roles"] == ["member", "staff"]
    token = await sign_in(client)
    assert (await client.get("/members", headers=bearer(token))).status_code == 200  # the new token carries it
    back = await client.put(f"/members/{jane['id']}/roles", json={"roles": ["member"]}, headers=bearer(staff))
    assert back.json()["roles"] == ["member"]
    member = await sign_in(client)
    refused = await client.put(f"/members/{jane['id']}/roles", json={"roles": ["staff"]}, headers=bearer(member))
    assert refused.status_code == 403
    assert (await client.put(f"/members/{jane['id']}/roles", json={"roles": ["staff"]})).status_code == 401
    bad = await client.put(f"/members/{jane['id']}/roles", json={"roles": ["company_admin"]}, headers=bearer(staff))
    assert bad.status_code == 422
    missing = await client.put("/members/nobody/roles", json={"roles": []}, headers=bearer(staff))
    assert missing.status_code == 404
    self_demote = await client.put("/members/staff-1/roles", json={"roles": []}, headers=bearer(staff))
    assert self_demote.status_code == 400
