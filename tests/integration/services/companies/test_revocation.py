"""A service other than members refuses revoked sessions as soon as it has consumed
`member.sessions_revoked.v1` (scte.kit.revocation through the real consumer and broker), on SQLite
and PostgreSQL. Companies stands for every service: they share the runtime that does this."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from scte.contracts.members import MemberSessionsRevoked
from scte.kit.testing import bearer

from .conftest import Service


def revoked(member_id: str, *, session_id: str | None = None, epoch: int = 0) -> MemberSessionsRevoked:
    return MemberSessionsRevoked(
        member_id=member_id,
        session_id=session_id,
        epoch=epoch,
        reason="signed_out" if session_id else "password_changed",
        revoked_at=datetime.now(UTC),
    )


async def test_revoked_sessions_are_refused_once_the_event_is_consumed(service: Service) -> None:
    tokens = service.tokens
    laptop = bearer(tokens.issue("m1", session_id="laptop"))
    phone = bearer(tokens.issue("m1", session_id="phone"))
    someone_else = bearer(tokens.issue("m2", session_id="laptop"))  # the same session id, another member
    for headers in (laptop, phone, someone_else):
        assert (await service.client.get("/companies", headers=headers)).status_code == 200

    async def refused(headers: object) -> bool:
        response: httpx.Response = await service.client.get("/companies", headers=headers)  # type: ignore[arg-type]
        if response.status_code == 200:
            return False
        assert response.status_code == 401, response.text
        assert "signed out or revoked" in response.json()["message"]
        return True

    # one session (a sign-out): that session only
    await service.publish(revoked("m1", session_id="laptop"), topic="members", source="members")
    await service.eventually(lambda: refused(laptop))
    assert not await refused(phone)
    assert not await refused(someone_else)

    # every session below epoch 2 (a password change); a token of the new epoch still works
    await service.publish(revoked("m1", epoch=2), topic="members", source="members")
    await service.eventually(lambda: refused(phone))
    assert not await refused(bearer(tokens.issue("m1", session_id="new", epoch=2)))

    # an older epoch arriving late (a standard queue reorders) does not lower it
    before = await service.processed()
    await service.publish(revoked("m1", epoch=1), topic="members", source="members")
    await service.eventually(lambda: _more(service, before))
    assert await refused(bearer(tokens.issue("m1", session_id="old", epoch=1)))
    assert not await refused(bearer(tokens.issue("m1", session_id="new", epoch=2)))
    assert not await refused(someone_else)


async def _more(service: Service, than: int) -> bool:
    return await service.processed() > than
