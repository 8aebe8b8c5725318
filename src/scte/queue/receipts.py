"""Receipt handles: opaque to clients, and tied to one receive of one message.

A handle encodes the queue, the message row and the nonce written at that receive; a later receive
writes a new nonce, so an older handle no longer matches.
"""

from __future__ import annotations

import base64
import binascii
import struct

from scte.queue.errors import SqsError

_LAYOUT = struct.Struct(">QQQ")
_PREFIX = "scte1"


def encode(queue_id: int, row_id: int, nonce: int) -> str:
    raw = _LAYOUT.pack(queue_id, row_id, nonce)
    return _PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def invalid(handle: str) -> SqsError:
    shown = handle if len(handle) <= 100 else handle[:100] + "..."
    return SqsError("ReceiptHandleIsInvalid", f'The input receipt handle "{shown}" is not a valid receipt handle.')


def decode(handle: str) -> tuple[int, int, int]:
    """Return (queue id, message row id, nonce); ReceiptHandleIsInvalid when it is not one of ours."""
    if not isinstance(handle, str) or not handle.startswith(_PREFIX) or len(handle) != len(_PREFIX) + 32:
        raise invalid(str(handle))
    try:
        raw = base64.urlsafe_b64decode(handle[len(_PREFIX) :] + "=" * (-len(handle) % 4))
    except (binascii.Error, ValueError):
        raise invalid(handle) from None
    if len(raw) != _LAYOUT.size:
        raise invalid(handle)
    queue_id, row_id, nonce = _LAYOUT.unpack(raw)
    if nonce == 0:
        raise invalid(handle)
    return queue_id, row_id, nonce
