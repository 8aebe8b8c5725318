"""The local mailbox: every mail the embedded SMTP server (`scte.web.mail`, 127.0.0.1:1025) received, in
one SQLite file, `<data>/mail/mail.db`.

The SMTP server writes it (`MailStore.add`); the notifications service reads it for its staff-only
mailbox API (`scte.services.notifications.mailbox`), and the end-to-end tests through `read_messages`.
Pages never open it: they call that API. Nothing is relayed anywhere.

Reading opens the file read-only (`mode=ro`): a reader never creates nor changes the mailbox.
"""

from __future__ import annotations

import email
import email.policy
import json
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from email.parser import BytesHeaderParser
from pathlib import Path

__all__ = [
    "MailParts",
    "MailStore",
    "StoredMail",
    "mail_db_path",
    "mail_parts",
    "message_id_of",
    "read_message",
    "read_messages",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_tos TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    raw BLOB NOT NULL
)
"""
_COLUMNS = "id, received_at, mail_from, rcpt_tos, subject, body, raw"


def mail_db_path(data_dir: Path) -> Path:
    return data_dir / "mail" / "mail.db"


@dataclass(frozen=True)
class StoredMail:
    id: int
    received_at: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    subject: str
    body: str
    raw: bytes


@dataclass(frozen=True)
class MailParts:
    """What a mail says, decoded: its text and HTML parts (empty when it has none)."""

    message_id: str
    text: str
    html: str


class MailStore:
    """The mailbox: one SQLite file, written by the SMTP handler."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def add(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> int:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        subject = str(message.get("subject", ""))
        body_part = message.get_body(preferencelist=("plain", "html")) if hasattr(message, "get_body") else None
        body = body_part.get_content() if body_part is not None else ""
        with self._lock, closing(self._connect()) as conn, conn:
            cursor = conn.execute(
                "INSERT INTO messages (received_at, mail_from, rcpt_tos, subject, body, raw) VALUES (?, ?, ?, ?, ?, ?)",
                (datetime.now(UTC).isoformat(), mail_from, json.dumps(rcpt_tos), subject, str(body), raw),
            )
            return int(cursor.lastrowid or 0)


def _row(row: tuple[object, ...]) -> StoredMail:
    rcpts = json.loads(str(row[3]))
    return StoredMail(
        int(str(row[0])),
        str(row[1]),
        str(row[2]),
        tuple(str(r) for r in rcpts),
        str(row[4]),
        str(row[5]),
        bytes(row[6]) if isinstance(row[6], bytes | bytearray | memoryview) else str(row[6]).encode(),
    )


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)


def read_messages(
    data_dir: Path,
    to: str | None = None,
    *,
    before: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[StoredMail]:
    """The messages received so far (oldest first, or newest first); those to one address when `to` is
    given; with `before`, only those whose id is lower; at most `limit`."""
    path = mail_db_path(data_dir)
    if not path.exists():
        return []
    query = f"SELECT {_COLUMNS} FROM messages"
    params: list[object] = []
    if before is not None:
        query += " WHERE id < ?"
        params.append(before)
    query += " ORDER BY id DESC" if newest_first else " ORDER BY id"
    out: list[StoredMail] = []
    with closing(_read_only(path)) as conn:
        for row in conn.execute(query, params):  # filtering on the decoded recipients: they are a JSON list
            mail = _row(row)
            if to is not None and to.lower() not in (r.lower() for r in mail.rcpt_tos):
                continue
            out.append(mail)
            if limit is not None and len(out) >= limit:
                break
    return out


def read_message(data_dir: Path, mail_id: int) -> StoredMail | None:
    path = mail_db_path(data_dir)
    if not path.exists():
        return None
    with closing(_read_only(path)) as conn:
        row = conn.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (mail_id,)).fetchone()
    return _row(row) if row is not None else None


def message_id_of(raw: bytes) -> str:
    """The Message-ID header without its angle brackets (headers only are parsed)."""
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    return str(headers.get("message-id", "")).strip().strip("<>")


def mail_parts(raw: bytes) -> MailParts:
    """The text and HTML parts of a mail as its sender wrote them (decoded, not sanitised: whoever shows
    them escapes them)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = html = ""
    if isinstance(message, EmailMessage):
        plain = message.get_body(preferencelist=("plain",))
        rich = message.get_body(preferencelist=("html",))
        text = _content(plain)
        html = _content(rich)
    return MailParts(str(message.get("message-id", "")).strip().strip("<>"), text, html)


def _content(part: MIMEPart | None) -> str:
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # an unknown charset or a broken encoding: the raw payload
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
