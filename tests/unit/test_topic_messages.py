"""scte.queue.topics.messages: MessageIds."""

from __future__ import annotations

import os
import uuid

from scte.queue.topics.messages import uuid4_text


def test_uuid4_text_is_uuid4() -> None:
    for raw in [bytes(16), b"\xff" * 16, *(os.urandom(16) for _ in range(1000))]:
        assert uuid4_text(raw) == str(uuid.UUID(bytes=raw, version=4))
