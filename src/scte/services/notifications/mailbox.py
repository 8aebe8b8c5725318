"""The mailbox API: every mail the local SMTP server received (embedded mode), for staff only.

The operations console's mail viewer calls it through the gateway with the staff member's token; a
member's token is refused (403), no token 401, on the service itself and so through the gateway's
`/api/notifications/...` proxy, which forwards the token and checks nothing. Each mail is joined to the
delivery log by its Message-ID (`<notification id>@scte.local`, set by `SmtpProvider`), which gives
its flow: the template, the event that caused it and its correlation id.

The mailbox file belongs to the local SMTP server (`scte.kit.mailbox`); it is opened read-only, in a
thread (the loop never waits on SQLite). With no local mailbox (production sends through a real SMTP
server, which keeps no copy) the list is empty.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from sqlalchemy import select

from scte.kit.app import Context, DbSession, NotFound
from scte.kit.auth import Principal, require_role
from scte.kit.bounds import INT_MAX
from scte.kit.mailbox import StoredMail, mail_parts, message_id_of, read_message, read_messages

from .db import deliveries

__all__ = ["router"]

router = APIRouter(tags=["mailbox"])

Staff = Annotated[Principal, Depends(require_role("staff"))]
MAX_PAGE = 200
NOTIFICATION_DOMAIN = "@scte.local"


class FlowOut(BaseModel):
    """Why the mail was sent: the delivery log's record of it."""

    notification_id: str
    template: str
    cause_event_type: str
    correlation_id: str | None
    status: str


class MailOut(BaseModel):
    id: int
    received_at: datetime
    mail_from: str
    to: list[str]
    subject: str
    message_id: str
    flow: FlowOut | None
    """None for a mail the delivery log does not know (sent by something else)."""


class MailPage(BaseModel):
    messages: list[MailOut]
    next_before: int | None
    """Pass as `before` for the next (older) page; None when this page is the last."""


class MailBodyOut(MailOut):
    text: str
    """The text/plain part, as sent (empty when there is none)."""
    html: str
    """The text/html part, as sent, not sanitised: show it escaped or in a sandboxed frame."""


def _notification_id(message_id: str) -> str | None:
    if message_id.endswith(NOTIFICATION_DOMAIN):
        return message_id.removesuffix(NOTIFICATION_DOMAIN)
    return None


async def _flows(session: DbSession, message_ids: list[str]) -> dict[str, FlowOut]:
    ids = [n for n in (_notification_id(m) for m in message_ids) if n]
    if not ids:
        return {}
    rows = await session.execute(
        select(
            deliveries.c.notification_id,
            deliveries.c.template,
            deliveries.c.cause_event_type,
            deliveries.c.correlation_id,
            deliveries.c.status,
        ).where(deliveries.c.notification_id.in_(ids))
    )
    return {row.notification_id: FlowOut.model_validate(row, from_attributes=True) for row in rows}


def _out(mail: StoredMail, message_id: str, flows: dict[str, FlowOut]) -> MailOut:
    notification = _notification_id(message_id)
    return MailOut(
        id=mail.id,
        received_at=datetime.fromisoformat(mail.received_at),
        mail_from=mail.mail_from,
        to=list(mail.rcpt_tos),
        subject=mail.subject,
        message_id=message_id,
        flow=flows.get(notification) if notification else None,
    )


@router.get("/mailbox", summary="The mails the local SMTP server received, newest first (staff)")
async def list_mail(
    ctx: Context,
    session: DbSession,
    _: Staff,
    to: Annotated[str | None, Query(min_length=3, max_length=320)] = None,
    before: Annotated[int | None, Query(ge=1, le=INT_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> MailPage:
    data_dir = ctx.settings.data_dir
    mails = await asyncio.to_thread(read_messages, data_dir, to, before=before, limit=limit + 1, newest_first=True)
    more = len(mails) > limit
    mails = mails[:limit]
    message_ids = [message_id_of(m.raw) for m in mails]
    flows = await _flows(session, message_ids)
    return MailPage(
        messages=[_out(m, mid, flows) for m, mid in zip(mails, message_ids, strict=True)],
        next_before=mails[-1].id if more and mails else None,
    )


@router.get("/mailbox/{mail_id}", summary="One mail with its text and HTML parts (staff)")
async def read_mail(
    mail_id: Annotated[int, Path(ge=1, le=INT_MAX)], ctx: Context, session: DbSession, _: Staff
) -> MailBodyOut:
    mail = await asyncio.to_thread(read_message, ctx.settings.data_dir, mail_id)
    if mail is None:
        raise NotFound("There is no such mail.")
    parts = mail_parts(mail.raw)
    flows = await _flows(session, [parts.message_id])
    return MailBodyOut(
        **_out(mail, parts.message_id, flows).model_dump(),
        text=withhold_secrets(parts.text),
        html=withhold_secrets(parts.html),
    )


_RESET_TOKEN = re.compile(r"(password-reset\?token=)[^\s\"'<>&]+")
WITHHELD_TOKEN = "WITHHELD"


def withhold_secrets(body: str) -> str:
    """A mail's body as staff may read it: a password-reset link's token replaced. Staff see that the
    link went out, never the link itself, which would let whoever reads it take the account over."""
    return _RESET_TOKEN.sub(lambda m: m.group(1) + WITHHELD_TOKEN, body)
