"""Random identifiers, shared by the broker (SNS MessageIds) and the bus (event ids).

`str(uuid.uuid4())` costs about 2.5 us, most of it the `UUID` object's constructor and `__str__`;
the same text formatted straight from the 16 random bytes' hex costs a third of that, and both are
made for every message. The bytes are never buffered across calls: a forked child must not reuse
its parent's (duplicate event ids would be dropped by an inbox as duplicates).
"""

from __future__ import annotations

import os

__all__ = ["new_uuid4", "uuid4_text"]

# The variant nibble of a UUID (RFC 4122: the two top bits of byte 8 are `10`) for each random nibble.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def uuid4_text(raw: bytes) -> str:
    """`str(uuid.UUID(bytes=raw, version=4))`: the 16 bytes with the version and variant bits set."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def new_uuid4() -> str:
    """A random UUID (version 4), as `str(uuid.uuid4())` writes it."""
    return uuid4_text(os.urandom(16))
