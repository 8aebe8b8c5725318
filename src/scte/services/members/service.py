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
from scte.kit.settings import Settings

from . import api, handlers, passwords, sessions
from .domain import MembersError
from .hashing import HashingBusy, HashingPool
from .limits import AbuseLimits, LimitSettings, RateLimited

__all__ = ["NAME", "QUEUE", "build_runtime", "main"]

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


def build_runtime(settings: Settings | None = None, *, limits: LimitSettings | None = None) -> ServiceRuntime:
    """The members service; `limits` (default: from `SCTE_MEMBERS_*`) sets its abuse limits and hashing pool."""
    limit_settings = limits or LimitSettings()
    runtime = ServiceRuntime(
        NAME,
        settings,
        routers=[api.router, sessions.router, passwords.router],
        queue=QUEUE,
        handlers=handlers.HANDLERS,
        migrations="scte.services.members",
        domain_errors={MembersError: 400},
        issues_tokens=True,
        background=[membership_sweep, sessions.session_sweep],
        dependencies={
            "abuse_limits": AbuseLimits(limit_settings),
            "hashing": HashingPool(
                limit_settings.hash_workers, limit_settings.hash_queue, limit_settings.hash_max_wait
            ),
        },
    )
    runtime.app.add_exception_handler(RateLimited, _rate_limited)
    runtime.app.add_exception_handler(HashingBusy, _hashing_busy)
    return runtime


def main() -> None:
    build_runtime().run()


if __name__ == "__main__":
    main()
