"""Notifications rules: the event-to-notice table, channel choice, and the retry policy."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scte.services.notifications.domain import (
    MAX_ATTEMPTS,
    ROUTES,
    Audience,
    Category,
    Channel,
    DeliveryError,
    Preferences,
    Route,
    channels_for,
    next_retry_delay,
    routes_for,
    should_retry,
)

CERT_NOTICE = Route("certification_awarded", Audience.MEMBER, Category.CERTIFICATION)
RECEIPT = Route("receipt", Audience.MEMBER, Category.TRANSACTIONAL)


def test_the_flows_of_the_architecture_notify_someone() -> None:
    assert [r.template for r in routes_for("certification.awarded.v1")] == [
        "certification_awarded",
        "employee_certified",
    ]
    assert {r.audience for r in routes_for("certification.awarded.v1")} == {Audience.MEMBER, Audience.COMPANY_ADMINS}
    assert routes_for("recert.requirements_met.v1")[0].template == "renewal_possible"
    assert routes_for("recert.window_opened.v1")[0].template == "renewal_window_open"
    assert routes_for("invoice.issued.v1") == (
        Route("invoice_issued", Audience.COMPANY_ADMINS, Category.TRANSACTIONAL),
    )
    assert routes_for("report.ready.v1")[0].audience is Audience.REQUESTER


def test_events_nobody_hears_of_send_nothing() -> None:
    for event_type in ("activity.recorded.v1", "notification.sent.v1", "company.rollup_changed.v1", "nope.v1"):
        assert routes_for(event_type) == ()


def test_template_names_are_unique_and_plain() -> None:
    templates = [r.template for routes in ROUTES.values() for r in routes]
    assert len(templates) == len(set(templates))
    assert all(t.replace("_", "").isalpha() and t.islower() for t in templates)


def test_email_by_default() -> None:
    assert channels_for(CERT_NOTICE, Preferences()) == [Channel.EMAIL]


def test_member_choices_limited_to_what_they_can_receive() -> None:
    choice = {Category.CERTIFICATION: frozenset({Channel.SMS, Channel.PUSH})}
    assert channels_for(CERT_NOTICE, Preferences(choice)) == []
    assert channels_for(CERT_NOTICE, Preferences(choice, has_phone=True)) == [Channel.SMS]
    assert channels_for(CERT_NOTICE, Preferences(choice, has_phone=True, has_push_device=True)) == [
        Channel.SMS,
        Channel.PUSH,
    ]


def test_transactional_notices_always_go_by_email() -> None:
    opted_out = Preferences({Category.TRANSACTIONAL: frozenset()})
    assert channels_for(RECEIPT, opted_out) == [Channel.EMAIL]
    sms = Preferences({Category.TRANSACTIONAL: frozenset({Channel.SMS})}, has_phone=True)
    assert channels_for(RECEIPT, sms) == [Channel.EMAIL, Channel.SMS]


@pytest.mark.parametrize(
    ("attempts", "delay"),
    [(1, timedelta(minutes=1)), (2, timedelta(minutes=2)), (3, timedelta(minutes=4)), (7, timedelta(hours=1))],
)
def test_backoff_doubles_and_is_capped_at_an_hour(attempts: int, delay: timedelta) -> None:
    assert next_retry_delay(attempts) == delay
    assert next_retry_delay(50) == timedelta(hours=1)


def test_no_delay_before_a_first_attempt() -> None:
    with pytest.raises(ValueError):
        next_retry_delay(0)


def test_retry_only_temporary_failures_and_only_so_often() -> None:
    assert should_retry(1, DeliveryError.TEMPORARY)
    assert should_retry(MAX_ATTEMPTS - 1, DeliveryError.TEMPORARY)
    assert not should_retry(MAX_ATTEMPTS, DeliveryError.TEMPORARY)
    assert not should_retry(1, DeliveryError.PERMANENT)
