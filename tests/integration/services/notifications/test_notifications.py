"""Notifications on a real database, a real broker and a real SMTP server (aiosmtpd on a free port):
templates per event, the delivery log, preferences, company admins, retries when SMTP refuses."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from scte.contracts.certification import CertificationAwarded
from scte.contracts.companies import CompanyEmploymentChanged, CompanyRolesChanged
from scte.contracts.learning import ExamPassed
from scte.contracts.members import MemberRegistered

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Inbox:
    """An SMTP handler keeping every message; `refuse` answers 451 to that many DATA commands first."""

    def __init__(self, refuse: int = 0) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = refuse
        self.refused = 0
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refused < self.refuse:
            self.refused += 1
            return "451 4.3.0 Try again later"
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(request: pytest.FixtureRequest) -> Iterator[Inbox]:
    inbox = Inbox(refuse=getattr(request, "param", 0))
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.port = controller.port
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def settings_overrides(smtp: Inbox) -> dict[str, Any]:
    """The service sends to this test's SMTP server (the conftest's `service` fixture reads it)."""
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port}


def registered(member: str, email: str, name: str = "Ada Lovelace") -> MemberRegistered:
    return MemberRegistered(member_id=member, email=email, display_name=name, registered_at=NOW)


def awarded(member: str) -> CertificationAwarded:
    return CertificationAwarded(
        certification_id=f"c-{member}",
        member_id=member,
        program="BPI",
        program_name="Broadband Premises Installer",
        awarded_on=date(2026, 3, 10),
        expires_on=date(2029, 3, 10),
    )


async def test_welcome_and_congratulation_mail_are_received(service: Any, smtp: Inbox) -> None:
    await service.publish(registered("m1", "ada@example.com"), topic="members")
    await service.publish(awarded("m1"), topic="certification")

    async def two_mails() -> bool:
        return len(smtp.to("ada@example.com")) == 2

    await service.eventually(two_mails)
    subjects = sorted(m["Subject"] for m in smtp.to("ada@example.com"))
    assert subjects == ["Congratulations on your BPI certification", "Welcome to SCTE, Ada Lovelace"]
    congrats = next(m for m in smtp.messages if "BPI" in m["Subject"])
    text = congrats.get_body(("plain",))
    html = congrats.get_body(("html",))
    assert text is not None and "Broadband Premises Installer (BPI)" in text.get_content()
    assert html is not None and "<strong>Broadband Premises Installer (BPI)</strong>" in html.get_content()

    async def both_sent() -> bool:
        return len(await service.published("notification.sent.v1")) == 2

    await service.eventually(both_sent)
    r = await service.client.get("/notifications/deliveries", headers=service.auth("m1"))
    assert r.status_code == 200
    assert {d["template"] for d in r.json()} == {"welcome", "certification_awarded"}
    assert all(d["status"] == "sent" and d["attempts"] == 1 for d in r.json())


async def test_a_redelivered_event_sends_once(service: Any, smtp: Inbox) -> None:
    await service.publish(registered("m1", "ada@example.com"), topic="members")
    event = ExamPassed(attempt_id="a1", member_id="m1", program="BPI", score_percent="80.00", taken_at=NOW)
    envelope = await service.publish(event, topic="learning")
    await service.eventually(lambda: _mails(smtp, 2))
    await service.redeliver(event, envelope)
    await service.eventually(lambda: _processed(service, 3))
    await service.runtime.context.extras["dispatcher"].run_once()
    assert len(smtp.messages) == 2


async def _mails(smtp: Inbox, n: int) -> bool:
    return len(smtp.messages) >= n


async def _processed(service: Any, n: int) -> bool:
    return bool(await service.processed() >= n)


@pytest.mark.parametrize("smtp", [2], indirect=True)
async def test_smtp_refusal_is_retried_with_backoff(service: Any, smtp: Inbox) -> None:
    await service.publish(registered("m1", "ada@example.com"), topic="members")

    async def refused(n: int) -> bool:
        r = await service.client.get("/notifications/deliveries", headers=service.auth("m1"))
        return bool(r.json() and r.json()[0]["attempts"] == n and r.json()[0]["status"] == "pending")

    await service.eventually(lambda: refused(1))
    delivery = (await service.client.get("/notifications/deliveries", headers=service.auth("m1"))).json()[0]
    assert "451" in delivery["last_error"]
    assert datetime.fromisoformat(delivery["next_attempt_at"]) == datetime(2026, 3, 10, 12, 1, tzinfo=UTC)
    assert smtp.messages == []
    service.clock.advance(61)  # first retry after 1 minute
    await service.eventually(lambda: refused(2))
    service.clock.advance(121)  # then 2 minutes
    await service.eventually(lambda: _mails(smtp, 1))
    sent = await service.eventually(lambda: service.published("notification.sent.v1"))
    assert sent[0].attempts == 3 and sent[0].template == "welcome"


async def test_mail_server_down_keeps_notice_due(service: Any, smtp: Inbox) -> None:
    dispatcher = await service.eventually(lambda: _dispatcher(service))
    email = dispatcher.providers["email"]
    real_port = email.port
    email.port = 1  # nothing listens: connection refused, a temporary failure
    await service.publish(registered("m1", "ada@example.com"), topic="members")

    async def waiting() -> bool:
        r = await service.client.get("/notifications/deliveries", headers=service.auth("m1"))
        return bool(r.json() and r.json()[0]["attempts"] >= 1 and r.json()[0]["status"] == "pending")

    await service.eventually(waiting)
    email.port = real_port
    service.clock.advance(3600)
    await service.eventually(lambda: _mails(smtp, 1))


async def _dispatcher(service: Any) -> Any:
    return service.runtime.context.extras.get("dispatcher")


async def test_company_admins_hear_of_an_employee_certified(service: Any, smtp: Inbox) -> None:
    await service.publish(registered("m1", "ada@example.com"), topic="members")
    await service.publish(registered("boss", "boss@example.com", "Grace Hopper"), topic="members")
    await service.publish(
        CompanyEmploymentChanged(
            company_id="acme", member_id="m1", employed=True, started_on=date(2026, 1, 1), changed_at=NOW
        ),
        topic="companies",
    )
    await service.publish(
        CompanyRolesChanged(company_id="acme", member_id="boss", roles=("admin",), changed_at=NOW), topic="companies"
    )
    await service.eventually(lambda: _processed(service, 4))
    await service.publish(awarded("m1"), topic="certification")
    await service.eventually(lambda: _mails(smtp, 4))
    boss = [m["Subject"] for m in smtp.to("boss@example.com")]
    assert "Ada Lovelace earned BPI" in boss


async def test_preferences_sms_and_push_are_recorded(service: Any, smtp: Inbox) -> None:
    r = await service.client.put(
        "/notifications/preferences/m1",
        json={"channels": {"certification": ["sms", "push"]}, "phone": "+15551234567", "push_token": "device-token-1"},
        headers=service.auth("m1"),
    )
    assert r.status_code == 200, r.text
    await service.publish(registered("m1", "ada@example.com"), topic="members")
    await service.publish(awarded("m1"), topic="certification")

    async def recorded() -> bool:
        sms = service.data_dir / "notifications" / "sms.jsonl"
        push = service.data_dir / "notifications" / "push.jsonl"
        return sms.exists() and push.exists()

    await service.eventually(recorded)
    sms = [json.loads(x) for x in (service.data_dir / "notifications" / "sms.jsonl").read_text().splitlines()]
    assert sms[0]["to"] == "+15551234567" and "BPI" in sms[0]["text"]
    await service.eventually(lambda: _mails(smtp, 1))  # the welcome (transactional) still goes by email
    assert [m["Subject"] for m in smtp.messages] == ["Welcome to SCTE, Ada Lovelace"]


async def test_access_and_bad_input(service: Any, smtp: Inbox) -> None:
    assert (await service.client.get("/notifications/deliveries")).status_code == 401
    r = await service.client.get("/notifications/preferences/m2", headers=service.auth("m1"))
    assert r.status_code == 403 and r.json()["message"]
    r = await service.client.get("/notifications/deliveries?recipient_id=m2", headers=service.auth("m1"))
    assert r.status_code == 403
    assert (
        await service.client.get("/notifications/deliveries?recipient_id=m2", headers=service.staff())
    ).status_code == 200
    r = await service.client.put("/notifications/preferences/m1", json={"phone": "555"}, headers=service.auth("m1"))
    assert r.status_code == 422 and "phone" in r.json()["message"]
    r = await service.client.put(
        "/notifications/preferences/m1", json={"channels": {"gossip": ["email"]}}, headers=service.auth("m1")
    )
    assert r.status_code == 422
    r = await service.client.get("/notifications/deliveries?status=lost", headers=service.auth("m1"))
    assert r.status_code == 422


async def test_an_invited_member_is_mailed_the_invitation(service: Any, smtp: Inbox) -> None:
    """company.invitation_sent reaches the invitee by mail; one naming nobody (an address no member
    has) sends nothing."""
    from datetime import timedelta

    from scte.contracts.companies import CompanyInvitationSent

    await service.publish(registered("m1", "ada@example.com"), topic="members")

    def invitation(member: str | None, invitation_id: str) -> CompanyInvitationSent:
        return CompanyInvitationSent(
            invitation_id=invitation_id,
            company_id="acme",
            company_name="Acme Cable",
            member_id=member,
            invited_by="m-admin",
            expires_at=NOW + timedelta(days=14),
            sent_at=NOW,
        )

    await service.publish(invitation(None, "i0"), topic="companies")
    await service.publish(invitation("m1", "i1"), topic="companies")

    async def invited() -> list[EmailMessage]:
        return [m for m in smtp.to("ada@example.com") if "invites you" in m["Subject"]]

    [mail] = await service.eventually(invited)
    assert mail["Subject"] == "Acme Cable invites you to join it on SCTE"
    body = mail.get_body(("plain",))
    assert body is not None and "2026-03-24" in body.get_content() and "accept" in body.get_content()
    # the dispatcher sends due notices concurrently: the welcome may arrive after the invitation

    async def welcomed() -> list[EmailMessage]:
        return [m for m in smtp.to("ada@example.com") if m["Subject"].startswith("Welcome")]

    await service.eventually(welcomed)
    assert len(smtp.messages) == 2  # the welcome and the invitation: nothing for the one naming nobody


async def test_a_password_reset_link_is_mailed_as_text_and_html(service: Any, smtp: Inbox) -> None:
    """member.password_reset_requested reaches the member by mail (transactional: whatever their
    preferences), the link in both parts."""
    from datetime import timedelta

    from scte.contracts.members import PasswordResetRequested

    await service.publish(registered("m1", "ada@example.com"), topic="members")
    link = "https://scte.example/password-reset?token=abc-DEF_123"
    await service.publish(
        PasswordResetRequested(
            member_id="m1", reset_url=link, expires_at=NOW + timedelta(minutes=30), requested_at=NOW
        ),
        topic="members",
    )

    async def reset_mails() -> list[EmailMessage]:
        return [m for m in smtp.to("ada@example.com") if "password" in m["Subject"]]

    [mail] = await service.eventually(reset_mails)
    assert mail["Subject"] == "Choose a new SCTE password"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and link in text.get_content() and "30 minutes" in text.get_content()
    assert html is not None and f'href="{link}"' in html.get_content()


async def test_a_notice_is_read_back_by_its_recipient_with_secrets_withheld(service: Any, smtp: Inbox) -> None:
    """The inbox page shows what was sent: the notice's text as mailed, but never a reset link (it is
    the key to the account; it lives in the mail only), and only to its recipient or staff."""
    from datetime import timedelta

    from scte.contracts.members import PasswordResetRequested

    await service.publish(registered("m1", "ada@example.com"), topic="members")
    await service.publish(awarded("m1"), topic="certification")
    link = "https://scte.example/password-reset?token=secret-TOKEN_42"
    await service.publish(
        PasswordResetRequested(
            member_id="m1", reset_url=link, expires_at=NOW + timedelta(minutes=30), requested_at=NOW
        ),
        topic="members",
    )

    async def three_sent() -> list[dict[str, Any]] | None:
        found = (await service.client.get("/notifications/deliveries", headers=service.auth("m1"))).json()
        return found if len(found) == 3 and all(d["status"] == "sent" for d in found) else None

    notices = {d["template"]: d for d in await service.eventually(three_sent)}
    congrats = await service.client.get(
        f"/notifications/deliveries/{notices['certification_awarded']['notification_id']}", headers=service.auth("m1")
    )
    assert congrats.status_code == 200, congrats.text
    mailed = next(m for m in smtp.messages if "BPI" in m["Subject"]).get_body(("plain",))
    assert mailed is not None
    assert congrats.json()["text"].strip() == mailed.get_content().replace("\r\n", "\n").strip()
    assert "Broadband Premises Installer (BPI)" in congrats.json()["text"]

    reset_id = notices["password_reset"]["notification_id"]
    reset = (await service.client.get(f"/notifications/deliveries/{reset_id}", headers=service.auth("m1"))).json()
    assert "30 minutes" in reset["text"] and "secret-TOKEN_42" not in reset["text"]
    assert "one-time link is in the mail itself" in reset["text"]
    as_staff = await service.client.get(f"/notifications/deliveries/{reset_id}", headers=service.staff())
    assert as_staff.status_code == 200 and "secret-TOKEN_42" not in as_staff.text

    # someone else's notice is not found; no token is 401; a malformed id is 422
    other = await service.client.get(f"/notifications/deliveries/{reset_id}", headers=service.auth("m2"))
    assert other.status_code == 404 and "no such notice" in other.json()["message"]
    assert (await service.client.get(f"/notifications/deliveries/{reset_id}")).status_code == 401
    missing = await service.client.get("/notifications/deliveries/nope", headers=service.auth("m1"))
    assert missing.status_code == 404
    bad = await service.client.get("/notifications/deliveries/" + "x" * 65, headers=service.auth("m1"))
    assert bad.status_code == 422
