"""Activity runs its own consumer (without the bus inbox), so it stores session revocations itself:
a revoked session is refused by its API too."""

from __future__ import annotations

from datetime import UTC, datetime

from scte.contracts.members import MemberSessionsRevoked
from scte.kit.testing import bearer

from .conftest import Service


async def test_a_revoked_session_is_refused_by_activity(service: Service) -> None:
    token = bearer(service.tokens.issue("m1", session_id="laptop"))
    assert (await service.client.get("/members/m1/activity", headers=token)).status_code == 200
    event = MemberSessionsRevoked(
        member_id="m1", session_id="laptop", epoch=0, reason="signed_out", revoked_at=datetime.now(UTC)
    )
    await service.publish(event, topic="members", source="members")

    async def refused() -> bool:
        response = await service.client.get("/members/m1/activity", headers=token)
        return response.status_code == 401 and "revoked" in response.json()["message"]

    await service.eventually(refused)
