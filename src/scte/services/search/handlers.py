"""Event handlers: keep the member directory, courses and processed media indexed. A member's entry
is rebuilt from the local read model (profile and certifications) whenever either changes, and
removed when the member is not listed in the directory. Each runs in the bus inbox's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scte.bus.consumer import Handler
from scte.bus.contracts import Event
from scte.contracts.certification import (
    CertificationAwarded,
    CertificationEmeritusGranted,
    CertificationExpired,
    CertificationLapsed,
    CertificationRenewed,
)
from scte.contracts.learning import CoursePublished
from scte.contracts.media import MediaProcessed
from scte.contracts.members import MemberProfileUpdated, MemberRegistered
from scte.kit.clock import Clock
from scte.kit.db import serialize, upsert

from . import index
from .db import member_certifications, members
from .domain import DocKind, course_document, doc_id, media_document, member_document

__all__ = ["HANDLERS", "designations", "reindex_member"]


def designations(rows: list[Any]) -> list[str]:
    """The post-nominals of held certifications: unique, sorted by code, emeritus as `BPI-E`."""
    codes = {f"{r.program}-E" if r.emeritus else r.program for r in rows if r.held}
    return sorted(codes)


async def reindex_member(session: AsyncSession, member_id: str, clock: Clock) -> None:
    person = (await session.execute(select(members).where(members.c.member_id == member_id))).first()
    certs = list(
        await session.execute(select(member_certifications).where(member_certifications.c.member_id == member_id))
    )
    held = designations(certs)
    doc = None
    if person is not None:
        doc = member_document(member_id, person.display_name, person.listed, held, person.city, person.country)
    if doc is None:
        await index.remove(session, doc_id(DocKind.MEMBER, member_id))
    else:
        await index.upsert(session, doc, member_id, clock.now(), designations=held)


async def on_member_registered(event: MemberRegistered, session: AsyncSession, clock: Clock) -> None:
    await serialize(session, f"member:{event.member_id}")
    await upsert(
        session,
        members,
        {"member_id": event.member_id, "display_name": event.display_name, "listed": False},
        ["member_id"],
        update=False,
    )


async def on_member_profile_updated(event: MemberProfileUpdated, session: AsyncSession, clock: Clock) -> None:
    await serialize(session, f"member:{event.member_id}")
    values = {
        "member_id": event.member_id,
        "display_name": event.display_name,
        "city": event.city,
        "country": event.country,
        "listed": event.listed_in_directory,
    }
    await upsert(session, members, values, ["member_id"])
    await reindex_member(session, event.member_id, clock)


async def _certification(
    session: AsyncSession, clock: Clock, event: Any, *, held: bool, emeritus: bool = False
) -> None:
    await serialize(session, f"member:{event.member_id}")
    values = {
        "certification_id": event.certification_id,
        "member_id": event.member_id,
        "program": event.program,
        "held": held,
        "emeritus": emeritus,
    }
    await upsert(session, member_certifications, values, ["certification_id"])
    await reindex_member(session, event.member_id, clock)


async def on_awarded(event: CertificationAwarded, session: AsyncSession, clock: Clock) -> None:
    await _certification(session, clock, event, held=True)


async def on_renewed(event: CertificationRenewed, session: AsyncSession, clock: Clock) -> None:
    await _certification(session, clock, event, held=True)


async def on_expired(event: CertificationExpired, session: AsyncSession, clock: Clock) -> None:
    await _certification(session, clock, event, held=False)


async def on_lapsed(event: CertificationLapsed, session: AsyncSession, clock: Clock) -> None:
    await _certification(session, clock, event, held=False)


async def on_emeritus(event: CertificationEmeritusGranted, session: AsyncSession, clock: Clock) -> None:
    await _certification(session, clock, event, held=True, emeritus=True)


async def on_course_published(event: CoursePublished, session: AsyncSession, clock: Clock) -> None:
    doc = course_document(event.course_id, event.title, event.description, event.units)
    await index.upsert(session, doc, event.course_id, clock.now(), units=event.units)


async def on_media_processed(event: MediaProcessed, session: AsyncSession, clock: Clock) -> None:
    title = event.title or event.media_id
    doc = media_document(event.media_id, title, title, event.content_type)
    thumb = next((r.storage_key for r in event.renditions if r.name == "thumb"), None)
    # not the owner's id: every signed-in member reads the results, and it would name members who are
    # not listed in the directory
    await index.upsert(session, doc, event.media_id, clock.now(), thumbnail=thumb)


HANDLERS: dict[str | type[Event], Handler] = {
    MemberRegistered: on_member_registered,
    MemberProfileUpdated: on_member_profile_updated,
    CertificationAwarded: on_awarded,
    CertificationRenewed: on_renewed,
    CertificationExpired: on_expired,
    CertificationLapsed: on_lapsed,
    CertificationEmeritusGranted: on_emeritus,
    CoursePublished: on_course_published,
    MediaProcessed: on_media_processed,
}
