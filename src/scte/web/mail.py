"""The local mail server `scte up` starts (aiosmtpd on 127.0.0.1:1025) and its mailbox.

Every message received is stored in `<data>/mail/mail.db` (SQLite), so the console and the
end-to-end tests read what the platform sent (`read_messages`). Nothing is relayed anywhere.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import signal
import sqlite3
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["MailStore", "StoredMail", "mail_db_path", "main", "read_messages"]

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


class MailStore:
    """The mailbox: one SQLite file, written by the SMTP handler, read by anyone."""

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
        with self._lock, self._connect() as conn:
            cursor = conn.execute(
                "INSERT INTO messages (received_at, mail_from, rcpt_tos, subject, body, raw) VALUES (?, ?, ?, ?, ?, ?)",
                (datetime.now(UTC).isoformat(), mail_from, json.dumps(rcpt_tos), subject, str(body), raw),
            )
            return int(cursor.lastrowid or 0)


def read_messages(data_dir: Path, to: str | None = None) -> list[StoredMail]:
    """The messages received so far (oldest first); those to one address when `to` is given."""
    path = mail_db_path(data_dir)
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=30) as conn:
        rows = conn.execute(
            "SELECT id, received_at, mail_from, rcpt_tos, subject, body, raw FROM messages ORDER BY id"
        ).fetchall()
    out = []
    for row in rows:
        rcpts = tuple(json.loads(row[3]))
        if to is not None and to.lower() not in (r.lower() for r in rcpts):
            continue
        out.append(StoredMail(row[0], row[1], row[2], rcpts, row[4], row[5], bytes(row[6])))
    return out


class _Handler:
    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        await asyncio.to_thread(self.store.add, str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], data)
        return "250 Message accepted for delivery"


def serve(data_dir: Path, host: str = "127.0.0.1", port: int = 1025) -> None:
    """Run the SMTP server until SIGTERM or SIGINT."""
    from aiosmtpd.controller import Controller

    store = MailStore(mail_db_path(data_dir))
    controller = Controller(_Handler(store), hostname=host, port=port)
    controller.start()
    print(f"scte mail: SMTP on {host}:{port}, mailbox {store.path}", file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        controller.stop()


def main() -> None:
    """`python -m scte.web.mail DATA_DIR [PORT]`."""
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("./var")
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 1025
    serve(data_dir, port=port)


if __name__ == "__main__":
    main()
