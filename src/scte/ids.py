"""Identifiers: random UUIDs for the broker's SNS MessageIds, time-ordered ones for the bus's event ids.

`str(uuid.uuid4())` costs about 2.5 us, most of it the `UUID` object's constructor and `__str__`;
the same text formatted straight from the random bytes' hex costs a third of that, and both are
made for every message. The bytes are never buffered across calls: a forked child must not reuse
its parent's (duplicate event ids would be dropped by an inbox as duplicates).

Event ids are UUIDv7 (RFC 9562: the Unix time in milliseconds, then 74 random bits). They are keys
of B-tree indexes in every service database (the outbox's unique event id, the inbox, effects keyed
by event): a random key puts each insert on a random leaf page, which a commit then writes to the
WAL and a checkpoint copies back, while time-ordered keys go to the last few pages. In the bus
bench that was 5 % of the CPU per event and 9 % of the throughput (docs/bus.md, "UUIDv7 event ids").
"""

from __future__ import annotations

import os
import time

__all__ = ["new_uuid4", "new_uuid7", "uuid4_text", "uuid7_text"]

# The variant nibble of a UUID (RFC 4122: the two top bits of byte 8 are `10`) for each random nibble.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _text(h: str, version: str) -> str:
    """The 32 hex digits `h` as a UUID's text, with the `version` digit and the variant bits set."""
    return f"{h[:8]}-{h[8:12]}-{version}{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def uuid4_text(raw: bytes) -> str:
    """`str(uuid.UUID(bytes=raw, version=4))`: the 16 bytes with the version and variant bits set."""
    return _text(raw.hex(), "4")


def new_uuid4() -> str:
    """A random UUID (version 4), as `str(uuid.uuid4())` writes it."""
    return uuid4_text(os.urandom(16))


def uuid7_text(unix_ms: int, raw: bytes) -> str:
    """The UUIDv7 of a time (Unix milliseconds, 48 bits) and 10 random bytes, as `uuid.UUID` writes it."""
    return _text((unix_ms.to_bytes(6, "big") + raw).hex(), "7")


def new_uuid7() -> str:
    """A time-ordered UUID (version 7): ids made in a later millisecond sort after earlier ones."""
    return uuid7_text(time.time_ns() // 1_000_000, os.urandom(10))
