"""The console's mail viewer (`/console/mail`): every mail the local SMTP server received, and one mail's
text and HTML.

Who may open it: staff only (a member or a company admin gets 403, a signed-out visitor sign-in). The
pages call the notifications service's mailbox API with the staff member's token (the service checks
the role again); no page opens the mailbox file.

How a mail's HTML is shown: in an `<iframe sandbox srcdoc="...">`. The HTML is autoescaped into the
attribute (so it cannot end the attribute or the frame), and the empty `sandbox` gives the frame an
opaque origin with no scripts, forms, pop-ups or top navigation: a hostile mail can neither run nor
reach the console's cookies or page. The frame inherits the page's Content-Security-Policy, so nothing
is fetched from elsewhere (no tracking pixel, works offline) and inline styles are dropped: the mail is
shown with its structure, not its exact look. The text part and the HTML source are shown as escaped
text. A page of escaped source alone would be safe too, but staff asked to see what members see.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from scte.web.client import ServiceError
from scte.web.site import Page, role_page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Staff = Annotated[Page, Depends(role_page("staff"))]

PAGE_SIZE = 50
_ADDRESS = re.compile(r"^[^\s<>]{3,320}$")


@router.get("/console/mail")
async def mail_list(page: Staff) -> Response:
    query = page.request.query_params
    to = query.get("to", "").strip()
    before = query.get("before", "")
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    error = None
    if to and not _ADDRESS.match(to):
        error, to = "Enter an e-mail address (at least 3 characters, no spaces) or leave it empty.", ""
    if to:
        params["to"] = to
    if before.isdigit() and 0 < len(before) < 10:
        params["before"] = int(before)
    answer = await page.services.get("notifications", "/mailbox", **params)
    return page.render(
        "console/mail.html",
        status=400 if error else 200,
        title="Mail sent",
        mails=answer.get("messages", []),
        next_before=answer.get("next_before"),
        to=to,
        error=error,
    )


@router.get("/console/mail/{mail_id}")
async def mail_message(mail_id: str, page: Staff) -> Response:
    if not mail_id.isdigit() or len(mail_id) > 9 or int(mail_id) < 1:
        raise ServiceError(404, "not_found", "There is no such mail.")
    mail = await page.services.get("notifications", f"/mailbox/{int(mail_id)}")
    return page.render("console/mail_message.html", title=f"Mail: {mail.get('subject', '')}", mail=mail)
