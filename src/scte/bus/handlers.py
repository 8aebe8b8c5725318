"""What a consumer's handlers are: plain async functions whose parameters are filled by name, and the
types of what they may ask for (`publish`, `schedule`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from scte.bus.contracts import Event
from scte.bus.envelope import Envelope

Handler = Callable[..., Awaitable[None]]
"""A plain async function; its parameters are filled by name (see `Consumer`)."""

Handlers = Mapping[Any, Handler]
"""Event type (the type string or the `Event` subclass) -> handler. The key is `Any` because `Mapping`
keys are invariant (a `dict[type[ExamPassed], ...]` is not a `Mapping[type[Event], ...]`); the
consumer checks the keys when it is built."""

BUILTIN_DEPENDENCIES = frozenset({"event", "envelope", "message", "session", "publish", "schedule"})


class Notifiable(Protocol):
    """Told after a handler's transaction committed events to the outbox (`OutboxRelay.notify`)."""

    def notify(self) -> None: ...


class Publish(Protocol):
    """What a handler asking for `publish` gets: the outbox of its own transaction."""

    async def __call__(self, event: Event, *, topic: str) -> Envelope: ...


class Schedule(Protocol):
    """What a handler asking for `schedule` gets: a delivery at `deliver_at`, in its own transaction."""

    async def __call__(
        self, event: Event, *, deliver_at: datetime, topic: str | None = None, queue: str | None = None
    ) -> Envelope: ...


@dataclass(frozen=True)
class _Route:
    handler: Handler
    parameters: tuple[str, ...]
    name: str = ""
    """The handler's qualified name, for spans and metrics."""


def _normalise(handlers: Handlers) -> dict[str, Handler]:
    routes: dict[str, Handler] = {}
    for key, handler in handlers.items():
        if isinstance(key, str):
            event_type = key
        elif isinstance(key, type) and issubclass(key, Event):
            event_type = key.event_type
        else:
            raise TypeError(f"handler keys are event types or Event classes, not {key!r}")
        if event_type in routes:
            raise ValueError(f"two handlers for {event_type}")
        routes[event_type] = handler
    return routes
