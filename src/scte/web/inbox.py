"""What was sent to the member (the notifications inbox) and the companies' invitations to answer.
Signed-in members only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from scte.web.courses import valid_id
from scte.web.site import Page, member_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Member = Annotated[Page, Depends(member_page)]


@router.get("/inbox")
async def inbox(page: Member) -> Response:
    deliveries = await page.services.get("notifications", "/notifications/deliveries", limit=100)
    return page.render("portal/inbox.html", title="Inbox", deliveries=deliveries)


@router.get("/inbox/{notification_id}")
async def notice(notification_id: str, page: Member) -> Response:
    """One notice as it was sent (its text; a one-time link is withheld: it lives in the mail only)."""
    found = await page.services.get("notifications", f"/notifications/deliveries/{valid_id(notification_id)}")
    return page.render("portal/notice.html", title=found.get("subject") or "Message", notice=found)


@router.get("/invitations")
async def invitations(page: Member) -> Response:
    found = await page.services.get("companies", f"/members/{page.member_id}/invitations")
    return page.render("portal/invitations.html", title="Company invitations", invitations=found)


async def _answer(page: Page, invitation_id: str, verb: str) -> Response:
    await page.form()
    invitation_id = valid_id(invitation_id)
    await page.services.post("companies", f"/members/{page.member_id}/invitations/{invitation_id}/{verb}")
    return page.redirect("/invitations?notice=" + ("accepted" if verb == "accept" else "declined"))


@router.post("/invitations/{invitation_id}/accept")
async def accept(invitation_id: str, page: Member) -> Response:
    return await _answer(page, invitation_id, "accept")


@router.post("/invitations/{invitation_id}/refuse")
async def refuse(invitation_id: str, page: Member) -> Response:
    return await _answer(page, invitation_id, "refuse")
