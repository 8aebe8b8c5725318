"""Receipt handles: opaque to clients, and tied to one receive of one message.

A handle names the queue, the message row and the nonce written at that receive; a later receive
writes a new nonce, so an older handle no longer matches. Plain hex fields: cheap to make and to read
on every receive and delete.
"""

from __future__ import annotations

from scte.queue.errors import SqsError

# queue id, message row id, nonce. Operations formats handles with this directly where it is hot.
HANDLE_FORMAT = "scte1.%x.%x.%016x"
_HEX_DIGITS = frozenset("0123456789abcdef")


def encode(queue_id: int, row_id: int, nonce: int) -> str:
    return HANDLE_FORMAT % (queue_id, row_id, nonce)


def invalid(handle: str) -> SqsError:
    shown = handle if len(handle) <= 100 else handle[:100] + "..."
    return SqsError("ReceiptHandleIsInvalid", f'The input receipt handle "{shown}" is not a valid receipt handle.')


def decode(handle: str) -> tuple[int, int, int]:
    """Return (queue id, message row id, nonce); ReceiptHandleIsInvalid when it is not one of ours."""
    if not isinstance(handle, str):
        raise invalid(str(handle))
    parts = handle.split(".")
    if len(parts) == 4 and parts[0] == "scte1":
        _, queue_part, row_part, nonce_part = parts
        if (
            0 < len(queue_part) <= 16
            and 0 < len(row_part) <= 16
            and 0 < len(nonce_part) <= 16
            and _HEX_DIGITS.issuperset(queue_part + row_part + nonce_part)
        ):
            nonce = int(nonce_part, 16)
            if nonce:
                return int(queue_part, 16), int(row_part, 16), nonce
    raise invalid(handle)
