"""The words the catalogue and the services' rules share must agree: a status, a unit source or a
product kind that one side knows and the other does not would fail at decoding, in production."""

from __future__ import annotations

import re
import typing
from enum import StrEnum
from typing import Any

import pytest

from scte.bus.contracts import registry
from scte.contracts import activity, certification, commerce, members, notifications, reports
from scte.services.activity import domain as activity_domain
from scte.services.certification import domain as certification_domain
from scte.services.commerce import domain as commerce_domain
from scte.services.members import domain as members_domain
from scte.services.notifications import domain as notifications_domain
from scte.services.reports import domain as reports_domain


def literal_values(alias: Any) -> set[str]:
    return set(typing.get_args(alias))


@pytest.mark.parametrize(
    ("contract", "enum"),
    [
        (certification.UnitSource, certification_domain.UnitSource),
        (certification.RenewalBasis, certification_domain.RenewalBasis),
        (members.MemberStatus, members_domain.MemberStatus),
        (commerce.ProductKind, commerce_domain.ProductKind),
        (commerce.PaymentMethod, commerce_domain.PaymentMethod),
        (notifications.Channel, notifications_domain.Channel),
        (reports.ReportKind, reports_domain.ReportKind),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_contract_literal_matches_domain_enum(contract: Any, enum: type[StrEnum]) -> None:
    assert literal_values(contract) == {member.value for member in enum}


def test_every_activity_kind_received_is_known_to_the_activity_rules() -> None:
    assert literal_values(activity.ActivityKind) <= {kind.value for kind in activity_domain.ActivityKind}


def test_program_codes_fit_the_contract_pattern() -> None:
    program_field = certification.CertificationAwarded.model_fields["program"]
    pattern: str = next(m.pattern for m in program_field.metadata if getattr(m, "pattern", None))
    for program in certification_domain.Program:
        assert re.fullmatch(pattern, program.value)


def test_notification_routes_name_registered_event_types() -> None:
    unknown = set(notifications_domain.ROUTES) - set(registry.types())
    assert not unknown


def test_activity_business_events_are_registered_event_types() -> None:
    unknown = set(activity_domain.BUSINESS_EVENT_KINDS) - set(registry.types())
    assert not unknown
