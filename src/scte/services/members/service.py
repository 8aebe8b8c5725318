"""The members service process: its queue, its runtime, and `python -m scte.services.members`."""

from __future__ import annotations

import asyncio
import logging

from fastapi import Request
from fastapi.responses import JSONResponse

from scte.bus.topology import QueueSpec, Subscription
from scte.contracts.certification import (
    CertificationAwarded,
    CertificationEmeritusGranted,
    CertificationExpired,
    CertificationLapsed,
    CertificationRenewed,
)
from scte.contracts.commerce import OrderPaid
from scte.contracts.companies import CompanyEmploymentChanged, CompanyRolesChanged
from scte.kit.app import ServiceContext, error_body
from scte.kit.runtime import ServiceRuntime
from scte.kit.service import PlatformService
from scte.kit.settings import Settings, get_settings

from . import api, handlers, passwords, sessions
from .domain import MembersError
from .hashing import HashingBusy, HashingPool
from .limits import AbuseLimits, LimitSettings, RateLimited

__all__ = ["NAME", "QUEUE", "build_runtime", "main", "service"]

log = logging.getLogger(__name__)

NAME = "members"

QUEUE = QueueSpec(
    NAME,
    fifo=True,  # one member's awards, expiries and dues apply in the order they happened
    subscriptions=(
        Subscription("commerce", event_types=(OrderPaid.event_type,)),
        Subscription(
            "certification",
            event_types=(
                CertificationAwarded.event_type,
                CertificationRenewed.event_type,
                CertificationExpired.event_type,
                CertificationLapsed.event_type,
                CertificationEmeritusGranted.event_type,
            ),
        ),
        Subscription("companies", event_types=(CompanyRolesChanged.event_type, CompanyEmploymentChanged.event_type)),
    ),
)

SWEEP_INTERVAL_SECONDS = 60.0


async def membership_sweep(context: ServiceContext) -> None:
    """Move ended terms to grace, then lapsed, as the clock passes their dates."""
    while True:
        async with context.sessionmaker() as session, session.begin():
            changed = await handlers.sweep_memberships(session, context.clock.now(), context.publish_in(session))
        if changed:
            log.info("membership sweep: %d member(s) changed standing", changed)
        await asyncio.sleep(float(context.extras.get("sweep_interval_seconds", SWEEP_INTERVAL_SECONDS)))


async def _rate_limited(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    return JSONResponse(
        error_body("too_many_requests", str(exc), retry_after=exc.retry_after),
        status_code=429,
        headers={"Retry-After": str(exc.retry_after)},
    )


async def _hashing_busy(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HashingBusy)
    return JSONResponse(
        error_body("unavailable", str(exc), retry_after=exc.retry_after),
        status_code=503,
        headers={"Retry-After": str(exc.retry_after)},
    )


def _parts(_settings: Settings, limits: LimitSettings | None = None) -> dict[str, object]:
    """The abuse limits and the hashing pool, from `limits` (default: from `SCTE_MEMBERS_*`)."""
    limit_settings = limits or LimitSettings()
    return {
        "abuse_limits": AbuseLimits(limit_settings),
        "hashing": HashingPool(limit_settings.hash_workers, limit_settings.hash_queue, limit_settings.hash_max_wait),
    }


service = PlatformService(
    NAME,
    queue=QUEUE,
    handlers=handlers.HANDLERS,
    routers=[api.router, sessions.router, passwords.router],
    migrations="scte.services.members",
    domain_errors={MembersError: 400},
    exception_handlers={RateLimited: _rate_limited, HashingBusy: _hashing_busy},
    dependencies=_parts,
    issues_tokens=True,
    background=[membership_sweep, sessions.session_sweep],
)
main = service.run


def build_runtime(settings: Settings | None = None, *, limits: LimitSettings | None = None) -> ServiceRuntime:
    """The members service; `limits` (default: from `SCTE_MEMBERS_*`) sets its abuse limits and hashing pool."""
    given = _parts(settings or get_settings(), limits) if limits is not None else None
    return service.runtime(settings, dependencies=given)


if __name__ == "__main__":
    main()
