"""One service, one process: its HTTP API, its consumer, its outbox relay and its scheduler.

A service declares itself as a `scte.kit.service.PlatformService` (a `scte.bus.service.Service` with
its HTTP API); `service.runtime(settings)` builds this object:

    service = PlatformService(
        "members",
        queue=QUEUE,
        handlers=handlers.HANDLERS,
        routers=[api.router],
        migrations="scte.services.members",
        domain_errors={MembersError: 400},
    )
    build_runtime = service.runtime
    main = service.run

The bus half (database, transport, relay, publisher, scheduler, consumer) is the bus service's
`RunningService`; this object adds the keys, the HTTP app, the service's hooks and background tasks.
`run()` serves until SIGTERM or SIGINT, then stops in order: the HTTP server stops accepting and
finishes its requests, the consumer finishes the handlers in hand (releasing the rest), the relay
delivers what it holds, and the database closes. In tests, `async with runtime:` starts everything
but HTTP (use `runtime.app` with httpx's ASGITransport), and `consume=False` leaves the consumer off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import APIRouter, FastAPI
from sqlalchemy import func, select, text

from scte.bus.consumer import Consumer, Handler
from scte.bus.scheduler import SchedulerLoop
from scte.bus.service import BusConfig, RunningService, Service
from scte.bus.storage import bus_outbox
from scte.bus.topology import QueueSpec, TopicSpec
from scte.bus.transport import TransportError
from scte.bus.transports._check import TopologyMissing
from scte.contracts.members import MemberSessionsRevoked
from scte.kit.app import ServiceContext, create_app
from scte.kit.auth import TokenIssuer, TokenVerifier, generate_key_pair
from scte.kit.clock import Clock
from scte.kit.db import create_engine, upgrade
from scte.kit.revocation import RevocationCheck, on_sessions_revoked, receives_revocations
from scte.kit.settings import Settings, get_settings

if TYPE_CHECKING:
    from scte.bus.contracts import Event
    from scte.bus.transport import Transport

__all__ = ["BackgroundTask", "ServiceRuntime", "configure_logging"]

log = logging.getLogger(__name__)

BackgroundTask = Callable[[ServiceContext], Awaitable[None]]
"""A coroutine run for the life of the process (a periodic sweep...); cancelled at shutdown."""


def configure_logging(service: str, level: str = "info") -> None:
    """JSON log lines with trace and correlation ids (`scte.kit.logs`)."""
    from scte.kit.logs import configure_logging as configure_json

    configure_json(service, level)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ServiceRuntime:
    """A service's process. Construct it cheaply (no I/O); `start()` does the work."""

    def __init__(
        self,
        name: str,
        settings: Settings | None = None,
        *,
        routers: Sequence[APIRouter] = (),
        queue: QueueSpec | None = None,
        handlers: Mapping[str | type[Event], Handler] | None = None,
        migrations: str | None = None,
        port: int | None = None,
        domain_errors: Mapping[type[Exception], int] | None = None,
        dependencies: Mapping[str, object] | None = None,
        topics: Sequence[TopicSpec] | None = None,
        issues_tokens: bool = False,
        background: Sequence[BackgroundTask] = (),
        on_start: Callable[[ServiceContext], Awaitable[None]] | None = None,
        on_stop: Callable[[ServiceContext], Awaitable[None]] | None = None,
        concurrency: int = 10,
        transport: Transport | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.settings = settings or get_settings()
        self.queue = queue
        self.handlers = dict(handlers or {})
        if self.handlers and receives_revocations(queue):
            # every service keeps the members service's session revocations (scte.kit.revocation);
            # one running its own consumer adds the handler itself (store_revocation)
            self.handlers.setdefault(MemberSessionsRevoked, on_sessions_revoked)
        self.migrations = migrations
        self.dependencies = dict(dependencies or {})
        self.issues_tokens = issues_tokens
        self.background = list(background)
        self.on_start = on_start
        self.on_stop = on_stop
        self.concurrency = concurrency
        self.transport: Transport | None = transport
        self._own_transport = transport is None
        self.clock = clock or Clock(self.settings.clock_offset_seconds, self.settings.clock_file)
        if port is None:
            from scte.platform import SERVICES

            info = SERVICES.get(name)
            port = info.port if info is not None else 0
        self.port = self.settings.port(name, port)
        if topics is None:
            from scte.platform import TOPICS

            topics = TOPICS
        self.bus = Service(
            name,
            topics=tuple(topics),
            queue=queue,
            handlers=self.handlers,
            prepare_database=self._prepare_database,
            create_engine=create_engine,
            concurrency=concurrency,
            consumer_options={"wait_seconds": self.settings.receive_wait_seconds},
        )
        self.topology = self.bus.topology
        self.database_url = self.settings.database_url(name)
        self.app: FastAPI = create_app(name, routers, domain_errors=domain_errors, health=self._health)
        self.app.state.metrics_probe = self._metrics_probe
        self.context: ServiceContext | None = None
        self.running: RunningService | None = None
        self.consumer: Consumer | None = None
        self.scheduler: SchedulerLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- life cycle --------------------------------------------------------------------------------------

    async def start(self, *, consume: bool = True) -> ServiceContext:
        """Migrate the database, load the keys, connect to the broker, start relay, scheduler, consumer
        and background tasks. The HTTP app is usable (via `self.app`) once this returns."""
        settings = self.settings
        running = self.bus.running(
            self._bus_config(), transport=None if self._own_transport else self.transport, clock=self.clock.timestamp
        )
        await running.open()  # the database (migrated), the transport (provisioned), relay and publisher
        self.running = running
        verifier, issuer = self._keys()
        self.app.state.token_verifier = verifier
        assert running.engine is not None and running.sessionmaker is not None and running.transport is not None
        assert running.publisher is not None and running.relay is not None
        self.transport = running.transport
        if settings.production:
            await self._check_topology(running.transport)  # deployed beforehand: checked, never made here
        context = ServiceContext(
            name=self.name,
            settings=settings,
            clock=self.clock,
            engine=running.engine,
            sessionmaker=running.sessionmaker,
            topology=self.topology,
            transport=running.transport,
            publisher=running.publisher,
            relay=running.relay,
            verifier=verifier,
            issuer=issuer,
            extras=dict(self.dependencies),
        )
        self.context = context
        self.app.state.context = context
        self.app.state.revocations = RevocationCheck(running.engine)
        if self.on_start is not None:
            await self.on_start(context)
        await running.start(
            consume=consume,
            dependencies={"clock": self.clock, "settings": settings, "context": context, **self.dependencies},
        )
        self.scheduler = running.scheduler
        self.consumer = running.consumer
        for task in self.background:
            self._tasks.append(asyncio.create_task(self._guard(task, context), name=f"{self.name}-{task.__name__}"))
        return context

    async def stop(self) -> None:
        """Stop consuming (handlers in hand finish), deliver the outbox, close everything.

        The whole stop shares one budget, the grace period: handlers in hand get half of it, the
        other steps what is left (at least half a second each). A step that runs out of time is
        logged and left behind, so stopping a service never hangs, and `scte up`, which waits a
        little longer than the grace period before it kills, normally sees a clean exit.
        """
        grace = self.settings.shutdown_grace_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace

        def remaining() -> float:
            return max(0.5, deadline - loop.time())

        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, remaining())
        self._tasks.clear()

        async def before_close() -> None:  # the consumer and scheduler are stopped: the handlers are done
            try:
                if self.on_stop is not None and self.context is not None:
                    await self.on_stop(self.context)
            finally:
                self.context = None
                self.app.state.context = None
                self.app.state.revocations = None

        running, self.running = self.running, None
        if running is not None:
            await running.stop(grace, before_close=before_close, deadline=deadline)
        else:
            await before_close()
        self.consumer = None
        self.scheduler = None
        if self._own_transport:
            self.transport = None

    async def __aenter__(self) -> ServiceRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve(self) -> None:
        """Start, serve HTTP on the service's port until SIGTERM/SIGINT, stop."""
        loop = asyncio.get_running_loop()
        app, port = self.app, self.port
        if self.settings.replica > 0:
            # a replica after the first consumes only: the API (and its in-process state, such as the
            # sign-in limits) stays on replica 0's port; this one answers /health on a port of its own
            app = create_app(f"{self.name}-{self.settings.replica}", health=self._health)
            port = self.settings.replica_port
        config = uvicorn.Config(
            app,
            host=self.settings.host,
            port=port,
            log_level="warning" if self.settings.log_level == "info" else self.settings.log_level,
            lifespan="off",
            access_log=False,  # the app writes one JSON line per request (scte.kit.observability)
            log_config=None,  # uvicorn's own lines go through the process's JSON handler too
        )
        server = _Server(config)

        def request_exit() -> None:
            server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, request_exit)
        try:
            await self.start()
            if app is not self.app:  # the replica's /metrics answers to the same token and staff as the API's
                for part in ("context", "token_verifier", "revocations"):
                    setattr(app.state, part, getattr(self.app.state, part, None))
            log.info("%s: serving on http://%s:%d", self.name, self.settings.host, port)
            await server.serve()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()
            log.info("%s: stopped", self.name)

    def run(self) -> None:
        """The process's entry point (`python -m scte.services.<name>`). A topology that is not deployed
        stops it with the list of what is missing (exit status 78, EX_CONFIG: restarting will not help)."""
        from scte.kit import observability, tracing

        observability.configure(self.name, self.settings)  # JSON logs, spans, the bus's observer
        try:
            asyncio.run(self.serve())
        except TopologyMissing as exc:
            log.error("%s", exc)
            raise SystemExit(78) from None
        finally:
            tracing.shutdown()  # the last spans reach the store

    # -- parts -------------------------------------------------------------------------------------------

    def _keys(self) -> tuple[TokenVerifier | None, TokenIssuer | None]:
        settings = self.settings
        ttl = timedelta(seconds=settings.token_ttl_seconds)
        if self.issues_tokens:
            generate_key_pair(settings.private_key_path, settings.public_key_path)
            issuer = TokenIssuer.from_file(settings.private_key_path, ttl=ttl)
            return issuer.verifier(), issuer
        if settings.public_key_path.exists():
            return TokenVerifier.from_file(settings.public_key_path), None
        log.warning(
            "%s: no public key at %s: every authenticated request is refused", self.name, settings.public_key_path
        )
        return None, None

    async def _check_topology(self, transport: Transport) -> None:
        """Production mode: the service's queue, its dead-letter queue, the topics it reads and its own
        topic, and its subscriptions must exist; `TopologyMissing` names what does not. A broker that does
        not answer is logged and the start goes on (the relay and the consumer retry until it does)."""
        check = getattr(transport, "check", None)
        if check is None:
            return
        own = [t.name for t in self.topology.topics if t.name == self.name]
        try:
            absent: list[str] = await check(self.topology, topics=own)
        except TransportError as exc:
            if exc.code is not None:
                raise TopologyMissing(self.name, self._broker_name(), [f"cannot be read: {exc}"]) from exc
            log.warning("%s: checking the topology failed (%s); continuing", self.name, exc)
            return
        if absent:
            raise TopologyMissing(self.name, self._broker_name(), absent)
        log.info("%s: the topology is deployed (%d topics, %d queues)", self.name, len(own), len(self.topology.queues))

    def _broker_name(self) -> str:
        return self.settings.aws_endpoint_url or "AWS"

    def _bus_config(self) -> BusConfig:
        """The platform's settings as the bus service's configuration."""
        settings = self.settings
        return BusConfig(
            broker="inprocess" if settings.transport == "inprocess" else settings.aws_endpoint_url or "aws",
            database=self.database_url,
            data_dir=settings.data_dir,
            prefix=settings.queue_prefix,
            provision=settings.provision_on_start and not settings.production,  # production: checked instead
            broker_path=settings.data_dir / "queue" / "inprocess.db",
            credentials_file=settings.broker_key_file(self.name),
        )

    async def _prepare_database(self, url: str) -> None:
        if self.migrations is not None:
            await upgrade(self.migrations, url)

    async def _health(self) -> dict[str, Any]:
        context = self.context
        if context is None:
            return {"status": "starting"}
        async with context.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            pending = int(await conn.scalar(select(func.count()).where(bus_outbox.c.sent_at.is_(None))) or 0)
        body: dict[str, Any] = {"status": "ok", "database": "ok", "outbox_pending": pending}
        # a service running its own consumer (activity: no inbox) keeps it in extras: reported the same
        consumer = self.consumer if self.consumer is not None else context.extras.get("consumer")
        if isinstance(consumer, Consumer):
            stats = consumer.stats
            body["consumer"] = {
                "queue": consumer.queue,
                "received": stats.received,
                "processed": stats.processed,
                "duplicates": stats.duplicates,  # redeliveries the inbox recognised (not run again)
                "retried": stats.retried,
                "dead_lettered": stats.dead_lettered,
            }
        return body

    async def _metrics_probe(self) -> dict[str, Any]:
        """The outbox's backlog and lag, and the messages the consumer holds, for `/metrics`."""
        context = self.context
        if context is None:
            return {}
        async with context.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(func.count(), func.min(bus_outbox.c.created_at)).where(bus_outbox.c.sent_at.is_(None))
                )
            ).one()
        pending, oldest = int(row[0] or 0), row[1]
        lag = max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest is not None else 0.0
        figures: dict[str, Any] = {"outbox_pending": pending, "outbox_lag_seconds": lag, "in_flight": {}}
        consumer = self.consumer or context.extras.get("consumer")  # a service may run its own (activity)
        if isinstance(consumer, Consumer):
            figures["in_flight"][consumer.queue] = consumer.in_hand
        return figures

    async def _guard(self, task: BackgroundTask, context: ServiceContext) -> None:
        while True:
            try:
                await task(context)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: background task %s failed; restarting in 5 s", self.name, task.__name__)
                await asyncio.sleep(5)
