"""Contracts: typed, versioned events and the registry that maps type names to models.

An event is a fact in the past tense with a type name and a version, `certification.awarded.v1`. A
new version is a new class (`certification.awarded.v2`) registered beside the old one, so a consumer
keeps decoding what is still in flight while producers move on.

    @event
    class CertificationAwarded(Event):
        event_type: ClassVar[str] = "certification.awarded.v1"
        member_id: str
        program: str

        def subject(self) -> str | None:
            return self.member_id
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "EVENT_TYPE_PATTERN",
    "DecodeError",
    "Event",
    "EventRegistry",
    "UnknownEventType",
    "event",
    "registry",
]

EVENT_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]*")
"""`<domain>.<name>.v<N>`: lower-case words with underscores, a version from 1."""


class DecodeError(Exception):
    """A received message cannot become an event. `reason` says why, for logs and dead-letter notes.

    The consumer runtime treats every subclass as permanent: retrying will not help.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownEventType(DecodeError, LookupError):
    """No model is registered for this event type (a newer producer, or a missing import)."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


class Event(BaseModel):
    """Base of every event: an immutable model whose JSON is the message body.

    Subclasses declare `event_type` and their fields; they may override `subject()`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        declared = cls.__dict__.get("event_type")
        if declared is not None:
            validate_event_type(declared)

    def subject(self) -> str | None:
        """The aggregate this event is about (e.g. the member id): the CloudEvents subject, the FIFO
        message group and the outbox's ordering key. Events of one subject are delivered in order."""
        return None

    @classmethod
    def version(cls) -> int:
        """The N of `.vN`."""
        return int(cls.event_type.rsplit(".v", 1)[1])


def validate_event_type(value: object) -> str:
    if not isinstance(value, str) or not EVENT_TYPE_PATTERN.fullmatch(value):
        raise ValueError(f"event_type must look like 'certification.awarded.v1' (<domain>.<name>.v<N>), got {value!r}")
    return value


E = TypeVar("E", bound=type["Event"])


class EventRegistry:
    """Event type name -> model. Decoding resolves through it; the AsyncAPI document lists it."""

    def __init__(self) -> None:
        self._types: dict[str, type[Event]] = {}

    def register(self, cls: E) -> E:
        """Register an event class (also usable as a class decorator). Registering the same class
        twice is harmless; two classes with one type name are an error."""
        if not (isinstance(cls, type) and issubclass(cls, Event)):
            raise TypeError(f"{cls!r} is not an Event subclass")
        event_type = validate_event_type(cls.__dict__.get("event_type"))
        existing = self._types.get(event_type)
        if existing is not None and existing is not cls:
            if existing.__module__ == cls.__module__ and existing.__qualname__ == cls.__qualname__:
                self._types[event_type] = cls  # the same module imported again (reload, importlib mode)
                return cls
            raise ValueError(
                f"event type {event_type!r} is already registered to {existing.__module__}.{existing.__qualname__}"
            )
        self._types[event_type] = cls
        return cls

    def resolve(self, event_type: str) -> type[Event]:
        try:
            return self._types[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def types(self) -> list[str]:
        return sorted(self._types)

    def json_schema(self, event_type: str) -> dict[str, Any]:
        """The JSON Schema (2020-12) of the event's body, as Pydantic validates it."""
        cls = self.resolve(event_type)
        schema = cls.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["x-event-type"] = event_type
        return schema

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._types

    def __iter__(self) -> Iterator[type[Event]]:
        return iter(self._types[t] for t in sorted(self._types))

    def __len__(self) -> int:
        return len(self._types)


registry = EventRegistry()
"""The process-wide registry that `scte.contracts` modules register into on import."""

event = registry.register
