"""Receipt handles: opaque to clients, and tied to one receive of one message.

A handle names the queue, the message row and the nonce written at that receive; a later receive
writes a new nonce, so an older handle no longer matches. Plain hex fields: cheap to make and to read
on every receive and delete.
"""

from __future__ import annotations

import re

from scte.queue.errors import SqsError

_PREFIX = "scte1."
_HANDLE = re.compile(r"scte1\.([0-9a-f]{1,16})\.([0-9a-f]{1,16})\.([0-9a-f]{1,16})")


def encode(queue_id: int, row_id: int, nonce: int) -> str:
    return "scte1.%x.%x.%016x" % (queue_id, row_id, nonce)  # noqa: UP031 - cheaper than format specs


def invalid(handle: str) -> SqsError:
    shown = handle if len(handle) <= 100 else handle[:100] + "..."
    return SqsError("ReceiptHandleIsInvalid", f'The input receipt handle "{shown}" is not a valid receipt handle.')


_HEX_DIGITS = frozenset("0123456789abcdef")


def decode(handle: str) -> tuple[int, int, int]:
    """Return (queue id, message row id, nonce); ReceiptHandleIsInvalid when it is not one of ours."""
    # The usual, valid handle without the regex (a third cheaper); anything else takes the regex below.
    parts = handle.split(".") if type(handle) is str else ()
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
    if not isinstance(handle, str):
        raise invalid(str(handle))
    match = _HANDLE.fullmatch(handle)
    if match is None:
        raise invalid(handle)
    queue_part, row_part, nonce_part = match.groups()
    nonce = int(nonce_part, 16)
    if nonce == 0:
        raise invalid(handle)
    return int(queue_part, 16), int(row_part, 16), nonce
