"""The notifications REST API: a member's channel preferences and delivery log, and each notice read
back as it was sent, without its secrets (self or staff)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from jinja2 import TemplateError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from scte.kit.app import Context, DbSession, NotFound
from scte.kit.auth import CurrentPrincipal, ensure_self_or_staff
from scte.kit.db import upsert

from .db import deliveries, preferences
from .dispatcher import notice_address
from .domain import Category, Channel
from .render import render_for_reading

__all__ = ["router"]

router = APIRouter(tags=["notifications"])

IdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channels: dict[Category, list[Channel]] = Field(default_factory=dict)
    """Per category, the channels wanted (an empty list: none; transactional notices still go by email)."""
    phone: Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = None
    """E.164, e.g. +15551234567."""
    push_token: Annotated[str, Field(min_length=8, max_length=256)] | None = None


class PreferencesOut(BaseModel):
    member_id: str
    channels: dict[str, list[str]]
    phone: str | None
    push_token: str | None


class DeliveryOut(BaseModel):
    notification_id: str
    recipient_id: str
    channel: str
    template: str
    cause_event_type: str
    status: str
    attempts: int
    address: str | None
    subject: str | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None


class NoticeOut(DeliveryOut):
    text: str
    """The plain-text body as the template renders it now; a secret field (a reset link) is withheld."""


NoticePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


@router.get(
    "/notifications/deliveries/{notification_id}",
    summary="One notice with its text, secrets withheld (its recipient; staff: anyone's)",
)
async def read_delivery(notification_id: NoticePath, session: DbSession, principal: CurrentPrincipal) -> NoticeOut:
    row = (await session.execute(select(deliveries).where(deliveries.c.notification_id == notification_id))).first()
    if row is None or (row.recipient_id != principal.member_id and not principal.is_staff):
        # someone else's notice is not found rather than forbidden: its id says nothing of whom it was for
        raise NotFound("There is no such notice.")
    _, context = await notice_address(session, row)
    try:
        rendered = render_for_reading(row.template, context)
    except TemplateError:  # a notice whose template cannot render (it failed to send for that reason)
        text = ""
    else:
        text = rendered.text
    return NoticeOut(**DeliveryOut.model_validate(row, from_attributes=True).model_dump(), text=text)


@router.get("/notifications/preferences/{member_id}", summary="A member's channel preferences")
async def get_preferences(member_id: IdPath, session: DbSession, principal: CurrentPrincipal) -> PreferencesOut:
    ensure_self_or_staff(principal, member_id)
    row = (await session.execute(select(preferences).where(preferences.c.member_id == member_id))).first()
    if row is None:
        return PreferencesOut(member_id=member_id, channels={}, phone=None, push_token=None)
    return PreferencesOut(member_id=member_id, channels=row.channels, phone=row.phone, push_token=row.push_token)


@router.put("/notifications/preferences/{member_id}", summary="Change a member's channel preferences")
async def put_preferences(
    member_id: IdPath, body: PreferencesIn, ctx: Context, session: DbSession, principal: CurrentPrincipal
) -> PreferencesOut:
    ensure_self_or_staff(principal, member_id)
    channels = {str(k): sorted({str(c) for c in v}) for k, v in body.channels.items()}
    values = {
        "member_id": member_id,
        "channels": channels,
        "phone": body.phone,
        "push_token": body.push_token,
        "updated_at": ctx.clock.now(),
    }
    async with session.begin():
        await upsert(session, preferences, values, ["member_id"])
    return PreferencesOut(member_id=member_id, channels=channels, phone=body.phone, push_token=body.push_token)


@router.get("/notifications/deliveries", summary="The delivery log (a member's own; staff: anyone's)")
async def list_deliveries(
    session: DbSession,
    principal: CurrentPrincipal,
    recipient_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    status: Annotated[str | None, Query(pattern=r"^(pending|sent|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    if recipient_id is None and not principal.is_staff:
        recipient_id = principal.member_id
    if recipient_id is not None:
        ensure_self_or_staff(principal, recipient_id)
    query = select(deliveries).order_by(deliveries.c.created_at.desc(), deliveries.c.notification_id).limit(limit)
    if recipient_id is not None:
        query = query.where(deliveries.c.recipient_id == recipient_id)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    return [DeliveryOut.model_validate(row, from_attributes=True) for row in await session.execute(query)]
