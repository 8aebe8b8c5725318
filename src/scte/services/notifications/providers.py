"""Channel providers: e-mail over SMTP (aiosmtplib), and SMS and push adapters. In embedded mode
SMS and push have no real gateway; their adapter records each delivery in a JSON-lines file so
that a person (or a test) can see what would have been sent."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import aiosmtplib

from .domain import Channel, DeliveryError

__all__ = ["DeliveryFailed", "Outgoing", "Provider", "RecordingProvider", "SmtpProvider"]


class DeliveryFailed(Exception):
    """A provider could not deliver; `kind` says whether trying again may help."""

    def __init__(self, message: str, kind: DeliveryError) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Outgoing:
    notification_id: str
    address: str
    subject: str
    text: str
    html: str


class Provider(Protocol):
    async def send(self, message: Outgoing) -> None:
        """Hand the message over, or raise DeliveryFailed."""


class SmtpProvider:
    """E-mail through an SMTP server (the local aiosmtpd in embedded mode)."""

    def __init__(
        self, host: str, port: int, *, sender: str = "SCTE <no-reply@scte.local>", timeout: float = 10.0
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout = timeout

    def message(self, outgoing: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = outgoing.address
        mail["Subject"] = outgoing.subject
        mail["Message-ID"] = f"<{outgoing.notification_id}@scte.local>"
        mail.set_content(outgoing.text)
        mail.add_alternative(outgoing.html, subtype="html")
        return mail

    async def send(self, message: Outgoing) -> None:
        try:
            await aiosmtplib.send(
                self.message(message), hostname=self.host, port=self.port, timeout=self.timeout, start_tls=False
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [error.code for error in exc.recipients]
            kind = DeliveryError.TEMPORARY if all(400 <= c < 500 for c in codes) else DeliveryError.PERMANENT
            raise DeliveryFailed(f"recipient refused: {exc}", kind) from exc
        except aiosmtplib.SMTPResponseException as exc:
            kind = DeliveryError.TEMPORARY if 400 <= exc.code < 500 else DeliveryError.PERMANENT
            raise DeliveryFailed(f"SMTP {exc.code}: {exc.message}", kind) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"SMTP server unavailable: {exc}", DeliveryError.TEMPORARY) from exc


class RecordingProvider:
    """SMS or push in embedded mode: each delivery appended to `<directory>/<channel>.jsonl`."""

    def __init__(self, directory: Path, channel: Channel) -> None:
        self.path = directory / f"{channel}.jsonl"
        self.channel = channel
        self._lock = asyncio.Lock()

    async def send(self, message: Outgoing) -> None:
        record = {
            "notification_id": message.notification_id,
            "to": message.address,
            "text": message.subject if self.channel is Channel.PUSH else f"{message.subject}: {message.text}"[:480],
            "at": datetime.now(UTC).isoformat(),
        }
        async with self._lock:
            await asyncio.to_thread(self._append, json.dumps(record))

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def deliveries(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]
