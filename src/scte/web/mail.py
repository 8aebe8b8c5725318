"""The local mail server `scte up` starts (aiosmtpd on 127.0.0.1:1025) and its mailbox.

Every message received is stored in `<data>/mail/mail.db` (SQLite, `scte.kit.mailbox`): the
notifications service serves it to staff (its mailbox API, which the console's mail viewer calls) and
the end-to-end tests read it (`read_messages`). Nothing is relayed anywhere.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from scte.kit.mailbox import MailStore, StoredMail, mail_db_path, read_messages

__all__ = ["MailStore", "StoredMail", "mail_db_path", "main", "read_messages"]


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
