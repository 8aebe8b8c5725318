"""The mailbox API on a real database, a real broker and the platform's own SMTP server (aiosmtpd writing
the mailbox file `scte up` keeps): staff list and read every mail with its flow; members and anonymous
callers are refused, on the service and through the gateway's open `/api` proxy; bad input is a 4xx."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from scte.kit.testing import api_client
from scte.web.gateway import create_gateway
from scte.web.mail import MailStore, _Handler, mail_db_path

from .test_notifications import awarded, registered


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[int]:
    """The local mail server as `scte up` runs it, its mailbox in this test's data directory."""
    controller = Controller(_Handler(MailStore(mail_db_path(tmp_path))), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.fixture
def settings_overrides(mail_server: int) -> dict[str, Any]:
    return {"smtp_host": "127.0.0.1", "smtp_port": mail_server}


async def _mail(service: Any, count: int) -> list[dict[str, Any]]:
    async def listed() -> list[dict[str, Any]]:
        r = await service.client.get("/mailbox", headers=service.staff())
        assert r.status_code == 200, r.text
        messages: list[dict[str, Any]] = r.json()["messages"]
        return messages if len(messages) >= count else []

    result: list[dict[str, Any]] = await service.eventually(listed)
    return result


async def test_staff_list_and_read_every_mail_with_its_flow(service: Any) -> None:
    hostile = "<script>alert(1)</script> Ada"
    await service.publish(registered("m1", "ada@example.com", hostile), topic="members")
    await service.publish(awarded("m1"), topic="certification")
    await service.publish(registered("m2", "bob@example.com", "Bob"), topic="members")
    mails = await _mail(service, 3)
    assert [m["id"] for m in mails] == sorted((m["id"] for m in mails), reverse=True)  # newest first
    by_subject = {m["subject"]: m for m in mails}
    congrats = by_subject["Congratulations on your BPI certification"]
    assert congrats["to"] == ["ada@example.com"]
    assert congrats["flow"]["template"] == "certification_awarded"
    assert congrats["flow"]["cause_event_type"] == "certification.awarded.v1"
    assert congrats["flow"]["correlation_id"]
    assert congrats["message_id"] == f"{congrats['flow']['notification_id']}@scte.local"

    r = await service.client.get(f"/mailbox/{congrats['id']}", headers=service.staff())
    assert r.status_code == 200
    body = r.json()
    assert "Broadband Premises Installer (BPI)" in body["text"]
    assert "<strong>Broadband Premises Installer (BPI)</strong>" in body["html"]
    assert body["flow"] == congrats["flow"]

    welcome = next(m for m in mails if m["to"] == ["ada@example.com"] and m["flow"]["template"] == "welcome")
    html = (await service.client.get(f"/mailbox/{welcome['id']}", headers=service.staff())).json()["html"]
    assert "<script>" not in html and "&lt;script&gt;" in html  # the template escaped the name already

    only_bob = await service.client.get("/mailbox", params={"to": "BOB@example.com"}, headers=service.staff())
    assert [m["to"] for m in only_bob.json()["messages"]] == [["bob@example.com"]]

    first = await service.client.get("/mailbox", params={"limit": 2}, headers=service.staff())
    assert len(first.json()["messages"]) == 2 and first.json()["next_before"] == first.json()["messages"][-1]["id"]
    rest = await service.client.get(
        "/mailbox", params={"limit": 2, "before": first.json()["next_before"]}, headers=service.staff()
    )
    assert [m["id"] for m in rest.json()["messages"]] == [mails[2]["id"]] and rest.json()["next_before"] is None


async def test_a_mail_the_delivery_log_does_not_know_has_no_flow(service: Any, mail_server: int) -> None:
    import aiosmtplib

    await aiosmtplib.send(
        "Subject: from elsewhere\r\nMessage-ID: <x@example.org>\r\n\r\nplain only\r\n",
        sender="someone@example.org",
        recipients=["ada@example.com"],
        hostname="127.0.0.1",
        port=mail_server,
    )
    mail = (await _mail(service, 1))[0]
    assert mail["flow"] is None and mail["message_id"] == "x@example.org"
    body = (await service.client.get(f"/mailbox/{mail['id']}", headers=service.staff())).json()
    assert body["text"].strip() == "plain only" and body["html"] == ""


async def test_members_and_anonymous_are_refused(service: Any) -> None:
    await service.publish(registered("m1", "ada@example.com"), topic="members")
    mail = (await _mail(service, 1))[0]
    for path in ("/mailbox", f"/mailbox/{mail['id']}"):
        assert (await service.client.get(path)).status_code == 401
        for roles in (("member",), ("member", "company_admin")):
            r = await service.client.get(path, headers=service.auth("m1", *roles, company_id="c1"))
            assert r.status_code == 403 and r.json()["error"] == "forbidden"


async def test_through_the_gateway_only_staff_get_the_mailbox(service: Any) -> None:
    """The gateway's `/api/<service>/...` proxy forwards the token and checks nothing itself: the service's
    check is what keeps the mailbox from members, so it is tested through the proxy too."""
    await service.publish(registered("m1", "ada@example.com"), topic="members")
    mail = (await _mail(service, 1))[0]
    gateway = create_gateway(
        {"notifications": "http://notifications"}, transport=httpx.ASGITransport(app=service.runtime.app)
    )
    async with gateway.router.lifespan_context(gateway), api_client(gateway) as client:
        for path in ("/api/notifications/mailbox", f"/api/notifications/mailbox/{mail['id']}"):
            assert (await client.get(path)).status_code == 401
            assert (await client.get(path, headers=service.auth("m1"))).status_code == 403
            assert (await client.get(path, headers={"Authorization": "Bearer forged"})).status_code == 401
            ok = await client.get(path, headers=service.staff())
            assert ok.status_code == 200 and "Welcome to SCTE" in ok.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/mailbox/0", 422),
        ("/mailbox/abc", 422),
        ("/mailbox/99999999999999", 422),
        ("/mailbox/12345", 404),
        ("/mailbox?limit=0", 422),
        ("/mailbox?limit=201", 422),
        ("/mailbox?before=-1", 422),
        ("/mailbox?to=x", 422),
    ],
)
async def test_bad_input_is_a_clear_refusal(service: Any, path: str, status: int) -> None:
    r = await service.client.get(path, headers=service.staff())
    assert r.status_code == status and r.json()["message"]


async def test_no_local_mailbox_is_an_empty_list(service: Any) -> None:
    """As in production, where mail goes to a real SMTP server that keeps no copy here."""
    mail_db_path(service.data_dir).unlink()
    r = await service.client.get("/mailbox", headers=service.staff())
    assert r.status_code == 200 and r.json() == {"messages": [], "next_before": None}


async def test_staff_read_that_a_reset_link_went_out_but_never_its_token(service: Any) -> None:
    from datetime import timedelta

    from scte.contracts.members import PasswordResetRequested

    from .test_notifications import NOW

    await service.publish(registered("m1", "ada@example.com"), topic="members")
    link = "http://127.0.0.1:8000/password-reset?token=tok-SECRET_123"
    event = PasswordResetRequested(
        member_id="m1", reset_url=link, expires_at=NOW + timedelta(minutes=30), requested_at=NOW
    )
    await service.publish(event, topic="members")
    mails = await _mail(service, 2)
    reset = next(m for m in mails if m["flow"] and m["flow"]["template"] == "password_reset")
    body = (await service.client.get(f"/mailbox/{reset['id']}", headers=service.staff())).json()
    for part in (body["text"], body["html"]):
        assert "password-reset?token=WITHHELD" in part
        assert "tok-SECRET_123" not in part
