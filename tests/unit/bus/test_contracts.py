"""Events and the registry."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import ValidationError

from scte.bus.contracts import Event, EventRegistry, UnknownEventType, validate_event_type


class MemberRegistered(Event):
    event_type: ClassVar[str] = "member.registered.v1"
    member_id: str
    email: str

    def subject(self) -> str | None:
        return self.member_id


def test_event_is_frozen_and_strict() -> None:
    e = MemberRegistered(member_id="m1", email="a@b.c")
    with pytest.raises(ValidationError):
        e.email = "x@y.z"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        MemberRegistered(member_id="m1", email="a@b.c", extra="no")  # type: ignore[call-arg]
    assert e.subject() == "m1"
    assert MemberRegistered.version() == 1


def test_subject_defaults_to_none() -> None:
    class Ping(Event):
        event_type: ClassVar[str] = "ops.pinged.v3"

    assert Ping().subject() is None
    assert Ping.version() == 3


@pytest.mark.parametrize(
    "name",
    ["certification.awarded.v1", "recert.units_credited.v12", "member.status_changed.v2", "po.charged.v1"],
)
def test_valid_event_types(name: str) -> None:
    assert validate_event_type(name) == name


@pytest.mark.parametrize(
    "name",
    ["certification.awarded", "Certification.awarded.v1", "certification.awarded.v0", "a.b.c.v1", "awarded.v1", "", 3],
)
def test_invalid_event_types_are_refused(name: object) -> None:
    with pytest.raises(ValueError, match="event_type"):
        validate_event_type(name)


def test_subclass_with_bad_type_fails_at_definition() -> None:
    with pytest.raises(ValueError, match="event_type"):

        class Bad(Event):
            event_type: ClassVar[str] = "Bad Type"


def test_registry_register_resolve_types() -> None:
    reg = EventRegistry()
    assert reg.register(MemberRegistered) is MemberRegistered
    reg.register(MemberRegistered)  # again: harmless

    @reg.register
    class Awarded(Event):
        event_type: ClassVar[str] = "certification.awarded.v1"
        member_id: str

    assert reg.resolve("certification.awarded.v1") is Awarded
    assert reg.types() == ["certification.awarded.v1", "member.registered.v1"]
    assert "member.registered.v1" in reg
    assert len(reg) == 2
    assert list(reg) == [Awarded, MemberRegistered]
    with pytest.raises(UnknownEventType) as info:
        reg.resolve("member.deleted.v1")
    assert info.value.event_type == "member.deleted.v1"
    assert "member.deleted.v1" in info.value.reason


def test_registry_refuses_two_classes_for_one_type() -> None:
    reg = EventRegistry()
    reg.register(MemberRegistered)

    class Other(Event):
        event_type: ClassVar[str] = "member.registered.v1"

    with pytest.raises(ValueError, match="already registered"):
        reg.register(Other)


def test_registry_refuses_non_events_and_abstract_bases() -> None:
    reg = EventRegistry()

    class Base(Event):
        """No event_type of its own."""

    with pytest.raises(TypeError):
        reg.register(dict)  # type: ignore[type-var]
    with pytest.raises(ValueError):
        reg.register(Base)


def test_json_schema() -> None:
    reg = EventRegistry()
    reg.register(MemberRegistered)
    schema = reg.json_schema("member.registered.v1")
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"member_id", "email"}
    assert schema["x-event-type"] == "member.registered.v1"
    assert schema["$schema"].startswith("https://json-schema.org/")
    with pytest.raises(UnknownEventType):
        reg.json_schema("nope.nope.v1")
