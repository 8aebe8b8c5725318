"""How a consumer's message ends (`Outcome`), the backoff before a retry, and the counts of each."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum


class Outcome(Enum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    RETRY = "retry"
    DEAD_LETTERED = "dead-lettered"
    RELEASED = "released"

    @property
    def settled(self) -> bool:
        """True if the message is gone from the queue (or should be: Lambda deletes it)."""
        return self in (Outcome.PROCESSED, Outcome.DUPLICATE, Outcome.DEAD_LETTERED)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff before redelivery after the n-th failed receive: `min(cap, base * 2**(n-1))`, scaled by a
    random factor in `[1 - jitter, 1]` so that messages failing together do not come back together."""

    base_seconds: float = 1.0
    cap_seconds: float = 900.0
    jitter: float = 0.5

    def delay(self, receive_count: int, rng: random.Random | None = None) -> int:
        raw = min(self.cap_seconds, self.base_seconds * 2.0 ** max(0, receive_count - 1))
        factor = 1.0 - self.jitter * (rng or random).random()
        return max(0, min(43_200, round(raw * factor)))


class HandlerTimeout(Exception):
    """The handler ran longer than the consumer's `handler_timeout`."""


@dataclass
class ConsumerStats:
    received: int = 0
    processed: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    released: int = 0
    heartbeats: int = 0
    transport_errors: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
