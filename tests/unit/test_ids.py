"""scte.ids: the random UUIDs of SNS MessageIds and the bus's event ids."""

from __future__ import annotations

import os
import uuid

from scte.ids import new_uuid4, uuid4_text


def test_uuid4_text_is_uuid4() -> None:
    for raw in [bytes(16), b"\xff" * 16, *(os.urandom(16) for _ in range(1000))]:
        assert uuid4_text(raw) == str(uuid.UUID(bytes=raw, version=4))


def test_new_uuid4_is_random() -> None:
    ids = {new_uuid4() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 for i in ids)
