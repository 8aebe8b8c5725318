"""The message catalogue: every event is unique, well named, registered, described by a JSON schema,
and survives a JSON round trip with its subject."""

from __future__ import annotations

import json
import types
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError

import scte.contracts
from scte.bus.contracts import EVENT_TYPE_PATTERN, Event, registry
from scte.contracts import CATALOGUE
from scte.contracts.certification import CertificationAwarded
from scte.contracts.commerce import OrderLine, OrderPaid, PoCharged
from scte.contracts.members import MemberRegistered

ARCHITECTURE_EVENTS = {
    "member.registered.v1",
    "membership.renewed.v1",
    "membership.lapsed.v1",
    "member.status_changed.v1",
    "course.completed.v1",
    "exam.passed.v1",
    "exam.failed.v1",
    "certification.awarded.v1",
    "certification.renewed.v1",
    "recert.units_credited.v1",
    "recert.window_opened.v1",
    "certification.expired.v1",
    "certification.lapsed.v1",
    "certification.emeritus_granted.v1",
    "order.paid.v1",
    "payment.failed.v1",
    "po.charged.v1",
    "invoice.issued.v1",
    "company.rollup_changed.v1",
    "notification.sent.v1",
    "notification.failed.v1",
    "activity.recorded.v1",
    "report.ready.v1",
    "media.uploaded.v1",
    "media.processed.v1",
    "event.attended.v1",
}

# Past participles that do not end in -ed, and the one adjective used as a state reached.
IRREGULAR_PAST = {"sent", "paid", "met", "ready"}

TYPES = [cls.event_type for cls in CATALOGUE]


def sample_value(annotation: Any, name: str) -> Any:
    """A valid value for a field, from its type (field names pick values for constrained strings)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return sample_value(args[0], name)
    if origin is Literal:
        return args[0]
    if origin in (types.UnionType, typing.Union):
        return sample_value(next(a for a in args if a is not type(None)), name)
    if origin is tuple:
        return (sample_value(args[0], name),)
    if origin is dict:
        return {sample_value(args[0], "program"): sample_value(args[1], name)}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample(annotation)
    if annotation is bool:
        return True
    if annotation is int:
        return 3
    if annotation is Decimal:
        return Decimal("80.00")
    if annotation in (datetime, AwareDatetime):
        return datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    if annotation is date:
        return date(2024, 5, 6)
    if annotation is str:
        special = {"currency": "USD", "program": "BPI", "sha256": "ab" * 32}
        return special.get(name, f"{name}-1")
    raise AssertionError(f"no sample for {name}: {annotation!r}")


def sample(cls: type[BaseModel]) -> Any:
    return cls(**{name: sample_value(f.annotation, name) for name, f in cls.model_fields.items()})


def test_catalogue_holds_every_event_of_the_architecture() -> None:
    assert set(TYPES) >= ARCHITECTURE_EVENTS, ARCHITECTURE_EVENTS - set(TYPES)


def test_event_types_and_class_names_are_unique() -> None:
    assert len(TYPES) == len(set(TYPES))
    names = [cls.__name__ for cls in CATALOGUE]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("cls", CATALOGUE, ids=TYPES)
def test_event_type_is_versioned_and_in_the_past_tense(cls: type[Event]) -> None:
    assert EVENT_TYPE_PATTERN.fullmatch(cls.event_type)
    assert cls.version() == 1
    last_word = cls.event_type.split(".")[1].split("_")[-1]
    assert last_word.endswith("ed") or last_word in IRREGULAR_PAST, cls.event_type
    assert cls.__doc__ and len(cls.__doc__) > 20, "each event says what fact it records"


@pytest.mark.parametrize("cls", CATALOGUE, ids=TYPES)
def test_event_is_registered(cls: type[Event]) -> None:
    assert registry.resolve(cls.event_type) is cls
    assert cls.event_type in registry


def test_every_event_class_in_the_package_is_in_the_catalogue() -> None:
    """A class defined without @event would be undecodable by consumers; CATALOGUE finds it anyway."""
    for module in scte.contracts.MODULES:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Event) and value is not Event:
                assert value in CATALOGUE
                assert value.__name__ in module.__all__


@pytest.mark.parametrize("cls", CATALOGUE, ids=TYPES)
def test_event_has_a_json_schema(cls: type[Event]) -> None:
    schema = registry.json_schema(cls.event_type)
    json.dumps(schema)
    assert schema["x-event-type"] == cls.event_type
    assert schema["type"] == "object"
    assert set(schema["properties"]) == set(cls.model_fields)
    assert schema.get("additionalProperties") is False


@pytest.mark.parametrize("cls", CATALOGUE, ids=TYPES)
def test_event_round_trips_through_json_and_names_its_subject(cls: type[Event]) -> None:
    instance = sample(cls)
    again = cls.model_validate_json(instance.model_dump_json())
    assert again == instance
    subject = instance.subject()
    assert isinstance(subject, str) and subject
    id_fields = {name for name in cls.model_fields if name.endswith("_id")}
    assert subject in {getattr(instance, name) for name in id_fields}


def test_datetimes_must_carry_a_zone_and_are_kept_in_utc() -> None:
    with pytest.raises(ValidationError):
        MemberRegistered(member_id="m1", email="a@b.co", display_name="A", registered_at=datetime(2024, 1, 1))
    new_york = timezone(timedelta(hours=-5))
    event = MemberRegistered(
        member_id="m1", email="a@b.co", display_name="A", registered_at=datetime(2024, 1, 31, 23, 30, tzinfo=new_york)
    )
    assert event.registered_at == datetime(2024, 2, 1, 4, 30, tzinfo=UTC)
    assert event.registered_at.utcoffset() == timedelta(0)
    assert '"2024-02-01T04:30:00Z"' in event.model_dump_json()


def test_events_are_frozen_and_refuse_unknown_fields() -> None:
    awarded = sample(CertificationAwarded)
    with pytest.raises(ValidationError):
        awarded.member_id = "other"
    with pytest.raises(ValidationError):
        CertificationAwarded.model_validate({**awarded.model_dump(), "grade": "A"})


def test_money_is_non_negative_cents_with_an_iso_currency() -> None:
    base = sample(PoCharged).model_dump()
    with pytest.raises(ValidationError):
        PoCharged(**{**base, "amount_cents": -1})
    with pytest.raises(ValidationError):
        PoCharged(**{**base, "currency": "usd"})
    with pytest.raises(ValidationError):
        OrderLine(kind="dues", reference="m1", unit_price_cents=100, quantity=0)


def test_order_paid_subject_is_the_order_and_po_charge_subject_is_the_company() -> None:
    paid = sample(OrderPaid)
    assert paid.subject() == paid.order_id
    charge = sample(PoCharged)
    assert charge.subject() == charge.company_id != charge.po_id


def test_certification_events_are_ordered_per_member() -> None:
    awarded = sample(CertificationAwarded)
    assert awarded.subject() == awarded.member_id


def test_the_domain_document_lists_every_event() -> None:
    """docs/domain.md's catalogue table is the reader's map; an event missing from it is a surprise."""
    text = (Path(__file__).parents[3] / "docs" / "domain.md").read_text(encoding="utf-8")
    missing = [t for t in TYPES if f"| `{t}` |" not in text]
    assert not missing
