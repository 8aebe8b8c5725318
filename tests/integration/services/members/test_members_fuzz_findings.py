"""What fuzzing the members API found answering 500, each now a 4xx with a message."""

from __future__ import annotations

import httpx

from scte.kit.runtime import ServiceRuntime
from scte.kit.testing import bearer, issuer


async def test_a_null_directory_choice_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    """`PATCH /members/{self}` with `{"listed_in_directory": null}` reached the NOT NULL column: 500."""
    body = {"email": "nell@example.com", "password": "Quartz-ledger-Plume-9317", "display_name": "Nell"}
    registered = await client.post("/members", json=body)
    assert registered.status_code == 201, registered.text
    member_id = registered.json()["id"]
    token = bearer(issuer(runtime.settings).issue(member_id, ["member"]))
    refused = await client.patch(f"/members/{member_id}", json={"listed_in_directory": None}, headers=token)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "invalid_request" and "listed_in_directory" in refused.json()["message"]
    kept = await client.get(f"/members/{member_id}", headers=token)
    assert kept.json()["listed_in_directory"] is False
    changed = await client.patch(f"/members/{member_id}", json={"listed_in_directory": True}, headers=token)
    assert changed.status_code == 200 and changed.json()["listed_in_directory"] is True
