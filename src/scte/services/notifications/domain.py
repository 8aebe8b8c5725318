"""Notifications rules: which event tells whom what, by which channels, and how delivery is retried.

The table ROUTES is the whole answer to "why did I get this mail": an event type maps to the
templates sent, each to an audience. Transactional notices (receipts, invoices, a certification
lapsing) always go by email whatever the member's preferences, because the member must be able to
rely on them; the others follow the member's channel choices and can be switched off.

Delivery is retried with exponential backoff for temporary failures (a provider timeout, SMTP 4xx),
never for permanent ones (a bad address, SMTP 5xx), then reported as notification.failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

__all__ = [
    "MAX_ATTEMPTS",
    "ROUTES",
    "Audience",
    "Category",
    "Channel",
    "DeliveryError",
    "Preferences",
    "Route",
    "channels_for",
    "next_retry_delay",
    "routes_for",
    "should_retry",
]


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


class Audience(StrEnum):
    MEMBER = "member"
    """The member the event is about (its subject)."""
    COMPANY_ADMINS = "company_admins"
    """The admins of the member's (or the event's) company."""
    REQUESTER = "requester"
    """Whoever asked for it (a report)."""


class Category(StrEnum):
    TRANSACTIONAL = "transactional"
    CERTIFICATION = "certification"
    LEARNING = "learning"
    MEMBERSHIP = "membership"


@dataclass(frozen=True)
class Route:
    template: str
    audience: Audience
    category: Category


def _r(template: str, audience: Audience, category: Category) -> Route:
    return Route(template, audience, category)


M, A, R = Audience.MEMBER, Audience.COMPANY_ADMINS, Audience.REQUESTER
T, C, L, S = Category.TRANSACTIONAL, Category.CERTIFICATION, Category.LEARNING, Category.MEMBERSHIP

ROUTES: Mapping[str, tuple[Route, ...]] = {
    "member.registered.v1": (_r("welcome", M, T),),
    "member.password_reset_requested.v1": (_r("password_reset", M, T),),
    "membership.started.v1": (_r("membership_started", M, S),),
    "membership.renewed.v1": (_r("membership_renewed", M, S),),
    "membership.lapsed.v1": (_r("membership_lapsed", M, S),),
    "exam.passed.v1": (_r("exam_passed", M, L),),
    "exam.failed.v1": (_r("exam_failed", M, L),),
    "course.completed.v1": (_r("course_completed", M, L),),
    "certification.awarded.v1": (_r("certification_awarded", M, C), _r("employee_certified", A, C)),
    "certification.renewed.v1": (_r("certification_renewed", M, C),),
    "recert.requirements_met.v1": (_r("renewal_possible", M, C),),
    "recert.window_opened.v1": (_r("renewal_window_open", M, C), _r("employee_renewal_due", A, C)),
    "certification.expired.v1": (_r("certification_expired", M, T), _r("employee_certification_expired", A, C)),
    "certification.lapsed.v1": (_r("certification_lapsed", M, T), _r("employee_certification_lapsed", A, C)),
    "certification.emeritus_granted.v1": (_r("emeritus_granted", M, C),),
    "order.paid.v1": (_r("receipt", M, T),),
    "payment.failed.v1": (_r("payment_failed", M, T),),
    "invoice.issued.v1": (_r("invoice_issued", A, T),),
    "report.ready.v1": (_r("report_ready", R, T),),
    "company.invitation_sent.v1": (_r("company_invitation", M, T),),
}
"""Event type -> what is sent. An event not listed sends nothing."""


def routes_for(event_type: str) -> tuple[Route, ...]:
    return ROUTES.get(event_type, ())


@dataclass(frozen=True)
class Preferences:
    """A member's channel choices per category; a category not listed uses email only."""

    channels: Mapping[Category, frozenset[Channel]] = field(default_factory=dict)
    has_phone: bool = False
    has_push_device: bool = False


def channels_for(route: Route, prefs: Preferences) -> list[Channel]:
    """The channels a notice goes by: the member's choice, limited to what they can receive; a
    transactional notice always includes email."""
    chosen = set(prefs.channels.get(route.category, frozenset({Channel.EMAIL})))
    if not prefs.has_phone:
        chosen.discard(Channel.SMS)
    if not prefs.has_push_device:
        chosen.discard(Channel.PUSH)
    if route.category is Category.TRANSACTIONAL:
        chosen.add(Channel.EMAIL)
    return [c for c in Channel if c in chosen]


# --- retries ---------------------------------------------------------------------------------------

MAX_ATTEMPTS = 6
FIRST_RETRY_DELAY = timedelta(minutes=1)
MAX_RETRY_DELAY = timedelta(hours=1)


class DeliveryError(StrEnum):
    TEMPORARY = "temporary"
    """Timeout, connection refused, SMTP 4xx, provider 429/5xx: may work later."""
    PERMANENT = "permanent"
    """Unknown address, SMTP 5xx, invalid phone number: will never work."""


def should_retry(attempts_made: int, error: DeliveryError) -> bool:
    return error is DeliveryError.TEMPORARY and attempts_made < MAX_ATTEMPTS


def next_retry_delay(attempts_made: int) -> timedelta:
    """The wait before attempt `attempts_made + 1`: 1, 2, 4, 8... minutes, capped at an hour, so a
    provider outage of a few minutes costs little and a long one is not hammered."""
    if attempts_made < 1:
        raise ValueError("a retry follows at least one attempt")
    # The exponent is capped: the delay reaches the cap long before, and 2**n would overflow timedelta.
    delay: timedelta = FIRST_RETRY_DELAY * (2 ** min(attempts_made - 1, 30))
    return min(delay, MAX_RETRY_DELAY)
