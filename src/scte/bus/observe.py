"""Hooks for spans and metrics around the bus's publishes and handlers, and the current correlation id.

The bus knows nothing of how a process observes itself: the process installs one `Observer`
(`scte.kit.observability` does, with OpenTelemetry spans and Prometheus metrics), and the publisher
and the consumer call it around each publish and each handler. With none installed (tests, benchmarks,
a library user) each call site costs one global read.

`correlation_id` is the correlation id of the work in hand: an HTTP request sets it from the gateway's
`X-Correlation-Id` header, a handler from the envelope it handles. An event published without a cause
joins the current correlation, so a user action's events carry the id its response showed.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from scte.bus.envelope import Envelope
    from scte.bus.transport import IncomingMessage

__all__ = ["Observer", "correlation_id", "get_observer", "set_observer"]

correlation_id: ContextVar[str | None] = ContextVar("scte_correlation_id", default=None)


class Observer(Protocol):
    """What a process does around the bus's work. Each `start` returns a token for its `end`."""

    def publishing(self, source: str, topic: str, event_type: str) -> Any:
        """Before an event is encoded into the outbox: a span made current here is its parent."""

    def published(self, token: Any, envelope: Envelope | None) -> None:
        """After it was written (`None`: it was not)."""

    def handling(self, consumer: str, queue: str, envelope: Envelope, message: IncomingMessage, handler: str) -> Any:
        """Before a handler runs (the span made current here is the parent of what it publishes)."""

    def handled(self, token: Any, error: BaseException | None, duplicate: bool = False) -> None:
        """After it ran: `error` when it failed, `duplicate` when the inbox had the event already."""


_observer: Observer | None = None


def set_observer(observer: Observer | None) -> None:
    """Install the process's observer (None removes it)."""
    global _observer
    _observer = observer


def get_observer() -> Observer | None:
    return _observer
