"""The message catalogue: every event SCTE's services publish, one module per publishing unit.

This package is the only code services share. Importing it registers every event in
`scte.bus.contracts.registry`, so a consumer can decode any type in the catalogue.

An event is a fact in the past tense, versioned in its type name (`certification.awarded.v1`). A
change a consumer could notice (a field removed, renamed, retyped, or newly required) is a new
class with `.v2` registered beside the old one; adding an optional field is not.
"""

from __future__ import annotations

from scte.bus.contracts import Event

from . import activity, certification, commerce, companies, learning, media, members, notifications, reports

__all__ = [
    "CATALOGUE",
    "MODULES",
    "activity",
    "certification",
    "commerce",
    "companies",
    "learning",
    "media",
    "members",
    "notifications",
    "reports",
]

MODULES = (members, learning, certification, commerce, companies, notifications, activity, reports, media)


def _catalogue() -> tuple[type[Event], ...]:
    found: list[type[Event]] = []
    for module in MODULES:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Event) and "event_type" in value.__dict__:
                found.append(value)
    return tuple(sorted(found, key=lambda cls: cls.event_type))


CATALOGUE: tuple[type[Event], ...] = _catalogue()
"""Every event class of the catalogue, sorted by type name."""
