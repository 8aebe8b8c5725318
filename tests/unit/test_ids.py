"""scte.ids: the random UUIDs of SNS MessageIds and the time-ordered UUIDs of the bus's event ids."""

from __future__ import annotations

import os
import time
import uuid

from scte.ids import new_uuid4, new_uuid7, uuid4_text, uuid7_text


def test_uuid4_text_is_uuid4() -> None:
    for raw in [bytes(16), b"\xff" * 16, *(os.urandom(16) for _ in range(1000))]:
        assert uuid4_text(raw) == str(uuid.UUID(bytes=raw, version=4))


def test_new_uuid4_is_random() -> None:
    ids = {new_uuid4() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_uuid7_text_is_rfc_9562_version_7() -> None:
    for ms, raw in [
        (0, bytes(10)),
        (2**48 - 1, b"\xff" * 10),
        *((t, os.urandom(10)) for t in range(0, 10**13, 10**10)),
    ]:
        text = uuid7_text(ms, raw)
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert parsed.int >> 80 == ms  # the top 48 bits are the time
        assert (parsed.int & ((1 << 62) - 1)) == int.from_bytes(raw[2:], "big") & ((1 << 62) - 1)  # rand_b kept


def test_new_uuid7_carries_the_time_and_sorts_by_it() -> None:
    before = time.time_ns() // 1_000_000
    first = [new_uuid7() for _ in range(1000)]
    time.sleep(0.002)
    later = new_uuid7()
    after = time.time_ns() // 1_000_000
    assert len(set(first)) == 1000
    assert all(before <= uuid.UUID(i).int >> 80 <= after for i in [*first, later])
    assert all(i < later for i in first)  # a later millisecond sorts after, as text too
