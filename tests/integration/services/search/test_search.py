"""Search on a real database (FTS5 on SQLite, tsvector on PostgreSQL) and broker: the directory with
designations, courses, processed media; query syntax; signed-in only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from scte.contracts.certification import CertificationAwarded, CertificationExpired
from scte.contracts.learning import CoursePublished
from scte.contracts.media import MediaProcessed, Rendition
from scte.contracts.members import MemberProfileUpdated, MemberRegistered

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def find(service: Any, q: str) -> list[tuple[str, str]]:
    r = await service.client.get("/search", params={"q": q}, headers=service.auth("m9"))
    assert r.status_code == 200, r.text
    return [(h["kind"], h["id"]) for h in r.json()["results"]]


async def member(service: Any, member_id: str, name: str, *, listed: bool = True, city: str = "Denver") -> None:
    await service.publish(
        MemberRegistered(member_id=member_id, email=f"{member_id}@x.org", display_name=name, registered_at=NOW),
        topic="members",
    )
    await service.publish(
        MemberProfileUpdated(
            member_id=member_id, display_name=name, city=city, country="US", listed_in_directory=listed, updated_at=NOW
        ),
        topic="members",
    )


def award(member_id: str, program: str = "BPI") -> CertificationAwarded:
    return CertificationAwarded(
        certification_id=f"c-{member_id}-{program}",
        member_id=member_id,
        program=program,
        program_name=program,
        awarded_on=date(2026, 3, 1),
        expires_on=date(2029, 3, 1),
    )


async def test_member_found_by_designation(service: Any) -> None:
    await member(service, "m1", "Ada Lovelace")
    await member(service, "m2", "Grace Hopper", listed=False)
    await service.publish(award("m1"), topic="certification")
    await service.publish(award("m2"), topic="certification")

    async def found() -> bool:
        return await find(service, "BPI") == [("member", "m1")]

    await service.eventually(found)
    r = await service.client.get("/search", params={"q": "bpi"}, headers=service.auth("m9"))
    hit = r.json()["results"][0]
    assert hit["title"] == "Ada Lovelace" and hit["details"]["designations"] == ["BPI"]
    assert await find(service, "program:BPI") == [("member", "m1")]
    assert await find(service, "lovel") == [("member", "m1")]  # prefix
    assert await find(service, "ada city:denver") == [("member", "m1")]
    assert await find(service, "ada city:boston") == []
    assert await find(service, "hopper") == []  # not listed in the directory
    await service.publish(
        CertificationExpired(
            certification_id="c-m1-BPI",
            member_id="m1",
            program="BPI",
            expired_on=date(2029, 3, 1),
            lapses_on=date(2030, 3, 1),
        ),
        topic="certification",
    )

    async def gone() -> bool:
        return await find(service, "BPI") == []

    await service.eventually(gone)
    assert await find(service, "ada") == [("member", "m1")]


async def test_courses_and_media(service: Any) -> None:
    await service.publish(
        CoursePublished(
            course_id="c1",
            title="DOCSIS 4.0 Fundamentals",
            description="Full duplex and more",
            units=3,
            published_at=NOW,
        ),
        topic="learning",
    )
    await service.publish(
        MediaProcessed(
            media_id="md1",
            owner_id="m1",
            title="Fiber splice enclosure",
            content_type="image/jpeg",
            renditions=(
                Rendition(
                    name="thumb",
                    width=160,
                    height=160,
                    content_type="image/jpeg",
                    storage_key="md/md1/thumb.jpg",
                    size_bytes=10,
                ),
            ),
            processed_at=NOW,
        ),
        topic="media",
    )

    async def both() -> bool:
        return await find(service, "docsis") == [("course", "c1")] and await find(service, "splice") == [
            ("media", "md1")
        ]

    await service.eventually(both)
    assert await find(service, '"full duplex"') == [("course", "c1")]
    assert await find(service, '"duplex full"') == []
    assert await find(service, "docsis -duplex") == []
    assert await find(service, "kind:media fiber") == [("media", "md1")]
    assert await find(service, "kind:course fiber") == []
    # engine syntax in user text is just text
    assert await find(service, 'docsis OR NEAR( "* ) AND') == []
    assert await find(service, "docsis*") == [("course", "c1")]


async def test_redelivery_and_access(service: Any) -> None:
    await member(service, "m1", "Ada Lovelace")
    envelope = await service.publish(award("m1"), topic="certification")
    await service.eventually(lambda: _found(service))
    await service.redeliver(award("m1"), envelope)
    await service.eventually(lambda: _processed(service, 4))
    assert await find(service, "BPI") == [("member", "m1")]
    assert (await service.client.get("/search", params={"q": "BPI"})).status_code == 401
    r = await service.client.get("/search", params={"q": ""}, headers=service.auth("m1"))
    assert r.status_code == 422 and r.json()["message"]
    r = await service.client.get("/search", params={"q": '"" -- -'}, headers=service.auth("m1"))
    assert r.status_code == 400 and "word" in r.json()["message"]
    r = await service.client.get("/search", params={"q": "x", "limit": 1000}, headers=service.auth("m1"))
    assert r.status_code == 422


async def _found(service: Any) -> bool:
    return await find(service, "BPI") == [("member", "m1")]


async def _processed(service: Any, n: int) -> bool:
    return bool(await service.processed() >= n)


async def test_a_media_hit_does_not_name_its_uploader(service: Any) -> None:
    """Search results showed `details.owner_id` of an upload: the member id of its uploader, listed in
    the directory or not. Neither a new document nor one indexed by an earlier version shows it."""
    from scte.services.search import index
    from scte.services.search.domain import media_document

    await service.publish(
        MediaProcessed(
            media_id="md2",
            owner_id="unlisted-1",
            title="Coax connector",
            content_type="image/jpeg",
            renditions=(),
            processed_at=NOW,
        ),
        topic="media",
    )

    async def hit() -> Any:
        r = await service.client.get("/search", params={"q": "coax"}, headers=service.auth("m9"))
        return r.json()["results"]

    [found] = await service.eventually(hit)
    assert found["id"] == "md2" and "owner_id" not in found["details"]
    # a document indexed with the owner's id (as before) does not show it either
    context = service.runtime.context
    async with context.sessionmaker() as session, session.begin():
        doc = media_document("md3", "Legacy amplifier", "Legacy amplifier", "image/jpeg")
        await index.upsert(session, doc, "md3", NOW, owner_id="unlisted-2", thumbnail="md/md3/thumb.jpg")
    r = await service.client.get("/search", params={"q": "amplifier"}, headers=service.auth("m9"))
    [legacy] = r.json()["results"]
    assert legacy["details"] == {"thumbnail": "md/md3/thumb.jpg"}
    assert "unlisted-2" not in r.text
