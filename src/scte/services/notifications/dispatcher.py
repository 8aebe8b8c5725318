"""The dispatcher: sends the due notices of the delivery log through their channel's provider.

A notice is claimed by pushing its `next_attempt_at` a lease ahead (so a crash mid-send only delays
it), sent outside any transaction, then recorded: sent (notification.sent), or pending again after
the domain's backoff when the failure is temporary, or failed (notification.failed) when it is
permanent or the attempts are exhausted. A mail server that is down therefore loses nothing: the
notice waits in the database and goes out when the server answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scte.bus.publisher import Publisher
from scte.contracts.notifications import NotificationFailed, NotificationSent
from scte.kit.clock import Clock

from .db import deliveries, preferences, recipients
from .domain import Channel, DeliveryError, next_retry_delay, should_retry
from .providers import DeliveryFailed, Outgoing, Provider
from .render import render

__all__ = ["TOPIC", "Dispatcher", "notice_address"]

TOPIC = "notifications"
log = logging.getLogger(__name__)


async def notice_address(session: AsyncSession, row: Any) -> tuple[str | None, dict[str, Any]]:
    """Where a delivery-log row goes (None: no address known yet) and the context its template renders
    with: the event, the recipient's and the member's current display names."""
    person = (await session.execute(select(recipients).where(recipients.c.member_id == row.recipient_id))).first()
    member_id = (row.context or {}).get("member_id")
    member = None
    if member_id:
        member = (await session.execute(select(recipients).where(recipients.c.member_id == member_id))).first()
    address: str | None = None
    if row.channel == Channel.EMAIL:
        address = person.email if person is not None else None
    else:
        prefs = (await session.execute(select(preferences).where(preferences.c.member_id == row.recipient_id))).first()
        if prefs is not None:
            address = prefs.phone if row.channel == Channel.SMS else prefs.push_token
    name = (person.display_name if person is not None else None) or "SCTE member"
    context = {
        "event": (row.context or {}).get("event", {}),
        "recipient": {"member_id": row.recipient_id, "display_name": name},
        "member": {
            "member_id": member_id,
            "display_name": (member.display_name if member is not None else None) or "A colleague",
        },
    }
    return address, context


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        providers: Mapping[Channel, Provider],
        clock: Clock,
        *,
        batch_size: int = 20,
        interval_seconds: float = 0.5,
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.publisher = publisher
        self.providers = dict(providers)
        self.clock = clock
        self.batch_size = batch_size
        self.interval_seconds = interval_seconds
        self.lease = lease
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    async def run_once(self) -> int:
        """Attempt every notice due now; how many were attempted."""
        total = 0
        while True:
            claimed = await self._claim()
            if not claimed:
                return total
            await self._attempt_all(claimed)
            total += len(claimed)
            if self._stopping.is_set():
                return total

    async def _attempt_all(self, rows: list[Any]) -> None:
        """Attempt `rows` together; when cancelled, return only once every attempt has ended.

        (A cancelled `gather` returns at its first cancelled child, which would leave the other
        attempts running behind, holding connections of an engine about to be disposed.)
        """
        tasks = [asyncio.ensure_future(self._attempt(row)) for row in rows]
        try:
            await asyncio.gather(*tasks)
        finally:
            pending = [task for task in tasks if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _claim(self) -> list[Any]:
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            query = (
                select(deliveries)
                .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
                .order_by(deliveries.c.next_attempt_at, deliveries.c.created_at)
                .limit(self.batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.execute(query)).all())
            if rows:
                await session.execute(
                    update(deliveries)
                    .where(deliveries.c.notification_id.in_([r.notification_id for r in rows]))
                    .values(next_attempt_at=now + self.lease)
                )
            return rows

    async def _address(self, row: Any) -> tuple[str | None, dict[str, Any]]:
        async with self.sessionmaker() as session:
            return await notice_address(session, row)

    async def _attempt(self, row: Any) -> None:
        attempts = row.attempts + 1
        subject: str | None = None
        address: str | None = None
        try:
            address, context = await self._address(row)
            if not address:
                raise DeliveryFailed(f"no {row.channel} address known yet", DeliveryError.TEMPORARY)
            try:
                rendered = render(row.template, context)
            except Exception as exc:  # a template that cannot render never will
                raise DeliveryFailed(f"template {row.template}: {exc}", DeliveryError.PERMANENT) from exc
            subject = rendered.subject
            provider = self.providers.get(Channel(row.channel))
            if provider is None:
                raise DeliveryFailed(f"no provider for {row.channel}", DeliveryError.PERMANENT)
            await provider.send(Outgoing(row.notification_id, address, rendered.subject, rendered.text, rendered.html))
        except DeliveryFailed as exc:
            await self._failed(row, attempts, address, subject, exc)
            return
        except Exception as exc:
            log.exception("notification %s: unexpected failure", row.notification_id)
            await self._failed(row, attempts, address, subject, DeliveryFailed(repr(exc), DeliveryError.TEMPORARY))
            return
        await self._sent(row, attempts, address, subject)

    async def _sent(self, row: Any, attempts: int, address: str | None, subject: str | None) -> None:
        now = self.clock.now()
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(deliveries)
                .where(deliveries.c.notification_id == row.notification_id)
                .values(
                    status="sent",
                    attempts=attempts,
                    sent_at=now,
                    next_attempt_at=None,
                    address=address,
                    subject=subject,
                    last_error=None,
                )
            )
            event = NotificationSent(
                notification_id=row.notification_id,
                recipient_id=row.recipient_id,
                channel=row.channel,
                template=row.template,
                cause_event_type=row.cause_event_type,
                attempts=attempts,
                sent_at=now,
            )
            await self.publisher.publish(session, event, topic=TOPIC, correlation_id=row.correlation_id)

    async def _failed(
        self, row: Any, attempts: int, address: str | None, subject: str | None, error: DeliveryFailed
    ) -> None:
        now = self.clock.now()
        retry = should_retry(attempts, error.kind)
        log.info("notification %s attempt %d failed (%s): %s", row.notification_id, attempts, error.kind, error)
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(deliveries)
                .where(deliveries.c.notification_id == row.notification_id)
                .values(
                    status="pending" if retry else "failed",
                    attempts=attempts,
                    next_attempt_at=now + next_retry_delay(attempts) if retry else None,
                    address=address,
                    subject=subject,
                    last_error=str(error)[:1000],
                )
            )
            if not retry:
                event = NotificationFailed(
                    notification_id=row.notification_id,
                    recipient_id=row.recipient_id,
                    channel=row.channel,
                    template=row.template,
                    cause_event_type=row.cause_event_type,
                    attempts=attempts,
                    error=str(error)[:1000],
                    permanent=error.kind is DeliveryError.PERMANENT,
                    failed_at=now,
                )
                await self.publisher.publish(session, event, topic=TOPIC, correlation_id=row.correlation_id)

    # -- background ----------------------------------------------------------------------------------

    def notify(self) -> None:
        """New notices were committed: look now rather than at the next tick."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="notifications-dispatcher")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Finish the round in hand (up to `grace_seconds`, then cancel it) and stop."""
        if self._task is not None:
            self._stopping.set()
            self._wake.set()
            await asyncio.wait({self._task}, timeout=grace_seconds)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self._stopping.clear()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("dispatcher: a round failed; trying again")
            if self._stopping.is_set():
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_seconds)
