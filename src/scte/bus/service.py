"""A declarative service: handlers registered by decorator, its own database and publisher, one call to run.

    service = Service("certificates", topics=[TopicSpec("exams"), TopicSpec("certificates")], metadata=metadata)

    @service.handles(ExamPassed, topic="exams")
    async def issue(event: ExamPassed, session: AsyncSession, publish: Publish) -> None:
        await session.execute(insert(certificates).values(member_id=event.member_id))
        await publish(CertificateIssued(member_id=event.member_id), topic="certificates")

    service.run()          # or, from a shell: scte run mymodule:service

The service's queue is derived from what it handles (one subscription per topic, filtered on the event
types handled), unless a `QueueSpec` is given. Where it runs is configuration, not code (`BusConfig`,
from arguments or `SCTE_BUS_*` variables): the broker engine inside the process (`inprocess`, the
default), the embedded broker or any SQS/SNS endpoint (`http://127.0.0.1:9324`), or AWS (`aws`); the
database is any SQLAlchemy async URL (default: `<name>.db` in the data directory, SQLite).

`async with service.running() as running:` gives the parts (`engine`, `sessionmaker`, `transport`,
`publisher`, `relay`, `consumer`) and `running.publish(event, topic=)`; `run()` serves until SIGTERM
or SIGINT, then stops in order: the consumer finishes the handlers in hand, the relay delivers what it
holds, the database closes. `scte.bus.testing.BusHarness.of(service)` runs the same service under test.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import MetaData

from scte.bus.consumer import Consumer, Handler, Handlers, RetryPolicy
from scte.bus.contracts import Event, EventRegistry
from scte.bus.contracts import registry as default_registry
from scte.bus.database import sessionmaker as bus_sessionmaker
from scte.bus.publisher import OutboxRelay, Publisher
from scte.bus.scheduler import SchedulerLoop
from scte.bus.storage import metadata as bus_metadata
from scte.bus.topology import QueueSpec, Subscription, TopicSpec, Topology

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from scte.bus.envelope import Envelope
    from scte.bus.transport import Transport

__all__ = ["BROKERS", "BusConfig", "RunningService", "Service", "default_engine"]

log = logging.getLogger(__name__)

H = TypeVar("H", bound=Handler)

BROKERS = ("inprocess", "http://HOST:PORT (the embedded broker or any SQS/SNS endpoint)", "aws")
"""What `BusConfig.broker` takes."""


@dataclass(frozen=True)
class BusConfig:
    """Where a service runs. Every field has an `SCTE_BUS_<FIELD>` variable (`SCTE_BUS_BROKER`...)."""

    broker: str = "inprocess"
    """`inprocess`: the `scte.queue` engine inside this process, on `<data_dir>/broker.db` (a single
    process: development, tests); `http://host:port`: the embedded broker (`scte queue serve`) or any
    SQS/SNS endpoint; `aws`: AWS itself (region and credentials from the usual AWS chain)."""
    database: str | None = None
    """The service's database, an SQLAlchemy async URL; default `sqlite+scte:///<data_dir>/<name>.db`."""
    data_dir: Path = Path(".")
    prefix: str = ""
    """Prefix of the physical queue and topic names (several installs on one broker or AWS account)."""
    provision: bool = True
    """Create the service's topics, queue and subscriptions when it starts (idempotent)."""
    broker_path: Path | None = None
    """The in-process broker's file; default `<data_dir>/broker.db`."""
    credentials_file: Path | None = None
    """A broker key file (JSON, re-read when it changes) instead of the AWS credential chain."""

    def __post_init__(self) -> None:
        broker = self.broker
        if broker not in ("inprocess", "aws") and not broker.startswith(("http://", "https://")):
            raise ValueError(f"unknown broker {broker!r}: one of {', '.join(BROKERS)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> BusConfig:
        """Arguments given (not None) win over `SCTE_BUS_*` variables, which win over the defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, convert in (
            ("broker", str),
            ("database", str),
            ("data_dir", Path),
            ("prefix", str),
            ("provision", _flag),
            ("broker_path", Path),
            ("credentials_file", Path),
        ):
            raw = env.get(f"SCTE_BUS_{name.upper()}")
            if raw:
                values[name] = convert(raw)
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(**values)

    def database_url(self, service: str) -> str:
        return self.database or f"sqlite+scte:///{(self.data_dir / f'{service}.db').resolve()}"


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {raw!r}")


PrepareDatabase = Callable[[str], Awaitable[None]]
"""Brings the database at a URL up to date (migrations); replaces creating the tables from `metadata`."""


class Service:
    """One consuming and publishing service, declared once: its topics, its handlers, its tables.

    Constructing it does no I/O; `running()` makes the parts, `run()` is a process's entry point.
    """

    def __init__(
        self,
        name: str,
        *,
        topics: Sequence[TopicSpec] = (),
        queue: QueueSpec | None = None,
        fifo: bool = False,
        handlers: Handlers | None = None,
        metadata: MetaData | Sequence[MetaData] = (),
        prepare_database: PrepareDatabase | None = None,
        create_engine: Callable[[str], AsyncEngine] | None = None,
        registry: EventRegistry | None = None,
        dependencies: Mapping[str, object] | None = None,
        concurrency: int = 10,
        retry: RetryPolicy | None = None,
        handler_timeout: float | None = None,
        consumer_options: Mapping[str, Any] | None = None,
        relay_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.topics = tuple(topics)
        self._queue = queue
        self.fifo = fifo
        self.handlers: dict[Any, Handler] = dict(handlers or {})
        self._handled_on: dict[str, str] = {}  # event type -> topic, for the derived queue
        self.metadata = [metadata] if isinstance(metadata, MetaData) else list(metadata)
        self.prepare_database = prepare_database
        self.create_engine: Callable[[str], AsyncEngine] = create_engine or default_engine
        self.registry = registry or default_registry
        self.dependencies = dict(dependencies or {})
        self.concurrency = concurrency
        self.retry = retry
        self.handler_timeout = handler_timeout
        self.consumer_options = dict(consumer_options or {})
        self.relay_options = dict(relay_options or {})

    def __repr__(self) -> str:
        return f"Service({self.name!r}, handlers={len(self.handlers)})"

    # -- declaring ---------------------------------------------------------------------------------------

    def handles(self, *event_types: type[Event] | str, topic: str | None = None) -> Callable[[H], H]:
        """Register the decorated async function as the handler of these events, arriving on `topic`
        (which may be left out when exactly one of the service's topics declares the event in its
        `events`). The function is returned unchanged, so it stays callable in unit tests."""
        if not event_types:
            raise TypeError("handles() needs at least one event type")
        resolved = [(t, t if isinstance(t, str) else t.event_type) for t in event_types]
        for event_type, type_name in resolved:
            if not isinstance(event_type, str):
                self.registry.register(event_type)
            if self._queue is None:
                self._handled_on[type_name] = self._topic_of(type_name, topic)

        def register(handler: H) -> H:
            for event_type, type_name in resolved:
                if event_type in self.handlers or type_name in self.handlers:
                    raise ValueError(f"{self.name}: {type_name} already has a handler")
                self.handlers[event_type] = handler
            return handler

        return register

    def _topic_of(self, type_name: str, topic: str | None) -> str:
        names = [t.name for t in self.topics]
        if topic is not None:
            if topic not in names:
                raise ValueError(f"{self.name}: topic {topic!r} is not one of the service's topics {names}")
            return topic
        carrying = [t.name for t in self.topics if type_name in t.events]
        if len(carrying) != 1:
            raise ValueError(
                f"{self.name}: say which topic carries {type_name}: @service.handles(..., topic=...) "
                f"(topics declaring it in their events: {carrying or 'none'})"
            )
        return carrying[0]

    @property
    def queue(self) -> QueueSpec | None:
        """The given queue, else one named after the service with a subscription per topic handled;
        None when the service handles nothing (it only publishes)."""
        if self._queue is not None:
            return self._queue
        if not self._handled_on:
            return None
        by_topic: dict[str, list[str]] = {}
        for type_name, topic in self._handled_on.items():
            by_topic.setdefault(topic, []).append(type_name)
        subscriptions = (Subscription(t, event_types=tuple(sorted(types))) for t, types in sorted(by_topic.items()))
        return QueueSpec(self.name, fifo=self.fifo, subscriptions=tuple(subscriptions))

    @property
    def topology(self) -> Topology:
        queue = self.queue
        return Topology(topics=self.topics, queues=(queue,) if queue is not None else ())

    # -- running -----------------------------------------------------------------------------------------

    def running(
        self,
        config: BusConfig | None = None,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] | None = None,
        dependencies: Mapping[str, object] | None = None,
        **config_values: Any,
    ) -> RunningService:
        """The service's parts, not started yet: `async with service.running(broker=...) as running:`.
        `config_values` are `BusConfig` fields over `config` (default: `BusConfig.from_env()`);
        `transport` replaces the configured broker (the caller closes it)."""
        given = {k: v for k, v in config_values.items() if v is not None}
        base = replace(config, **given) if config is not None else BusConfig.from_env(**given)
        return RunningService(self, base, transport=transport, clock=clock, dependencies=dependencies)

    async def serve(self, config: BusConfig | None = None, **config_values: Any) -> None:
        """Start, consume and relay until SIGTERM/SIGINT, stop."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        try:
            async with self.running(config, **config_values) as running:
                queue = self.queue
                log.info(
                    "%s: running on %s%s",
                    self.name,
                    running.config.broker,
                    f", consuming {queue.name}" if queue is not None and self.handlers else "",
                )
                await stopping.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        log.info("%s: stopped", self.name)

    def run(self, config: BusConfig | None = None, **config_values: Any) -> None:
        """The process's entry point: `service.run()`, `service.run(broker="http://127.0.0.1:9324")`."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level="INFO", format=f"%(asctime)s {self.name} %(levelname)s %(name)s: %(message)s")
        asyncio.run(self.serve(config, **config_values))


@dataclass
class _Owned:
    transport: bool = False
    broker_engine: Any = None


class RunningService:
    """A service's parts in one process: database, transport, outbox relay and publisher, scheduler and
    consumer. `open()` makes them, `start()` starts the background work, `stop()` ends it in order."""

    def __init__(
        self,
        service: Service,
        config: BusConfig,
        *,
        transport: Transport | None = None,
        clock: Callable[[], float] | None = None,
        dependencies: Mapping[str, object] | None = None,
    ) -> None:
        self.service = service
        self.config = config
        self.database_url = config.database_url(service.name)
        self.topology = service.topology
        self.clock = clock
        self.dependencies = {**service.dependencies, **(dependencies or {})}
        self._given_transport = transport
        self._owned = _Owned(transport=transport is None)
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.transport: Transport | None = transport
        self.relay: OutboxRelay | None = None
        self.publisher: Publisher | None = None
        self.scheduler: SchedulerLoop | None = None
        self.consumer: Consumer | None = None

    # -- life cycle --------------------------------------------------------------------------------------

    async def open(self) -> RunningService:
        """The database (prepared), the transport (the topology provisioned if configured), the relay
        and the publisher; nothing runs in the background yet."""
        if self.service.prepare_database is not None:
            await self.service.prepare_database(self.database_url)
        engine = self.service.create_engine(self.database_url)
        if self.service.prepare_database is None:
            async with engine.begin() as connection:
                for metadata in (bus_metadata, *self.service.metadata):
                    await connection.run_sync(metadata.create_all)
        self.engine = engine
        self.sessionmaker = bus_sessionmaker(engine, expire_on_commit=False)
        transport = self.transport or await self._make_transport()
        self.transport = transport
        if self.config.provision:
            try:
                await transport.provision(self.topology)
            except Exception:  # the broker may be down: the relay and consumer retry until it is back
                log.exception("%s: provisioning the topology failed; continuing", self.service.name)
        self.relay = OutboxRelay(self.sessionmaker, transport, **self.service.relay_options)
        self.publisher = Publisher(self.service.name, self.topology, relay=self.relay)
        return self

    async def start(self, *, consume: bool = True, dependencies: Mapping[str, object] | None = None) -> RunningService:
        """Open (if not yet), then start the relay, the scheduler and (with `consume` and handlers) the consumer."""
        if self.engine is None:
            await self.open()
        assert self.sessionmaker is not None and self.transport is not None and self.relay is not None
        self.relay.start()
        self.scheduler = SchedulerLoop(self.sessionmaker, transport=self.transport, relay=self.relay, clock=self.clock)
        self.scheduler.start()
        service, queue = self.service, self.service.queue
        if consume and queue is not None and service.handlers:
            options: dict[str, Any] = {"retry": service.retry, "handler_timeout": service.handler_timeout}
            options.update(service.consumer_options)
            self.consumer = Consumer(
                self.transport,
                self.topology,
                service.registry,
                queue=queue.name,
                handlers=service.handlers,
                sessionmaker=self.sessionmaker,
                publisher=self.publisher,
                dependencies={**self.dependencies, **(dependencies or {})},
                concurrency=service.concurrency,
                name=service.name,
                **options,
            )
            await self.consumer.start()
        return self

    async def stop(
        self,
        grace_seconds: float = 10.0,
        *,
        before_close: Callable[[], Awaitable[None]] | None = None,
        deadline: float | None = None,
    ) -> None:
        """Stop consuming (handlers in hand get half the grace period), stop the scheduler, run
        `before_close`, deliver the outbox, close the database and what this object opened.

        The whole stop shares one budget (`deadline`, loop time; default now + the grace period): a step
        that runs out of time is logged and left behind (at least half a second each), so stopping
        never hangs."""
        loop = asyncio.get_running_loop()
        end = loop.time() + grace_seconds if deadline is None else deadline
        name = self.service.name

        def remaining() -> float:
            return max(0.5, end - loop.time())

        async def step(what: str, awaitable: Awaitable[object]) -> None:
            try:
                await asyncio.wait_for(awaitable, remaining())
            except TimeoutError:
                log.warning("%s: stopping %s ran out of time; going on", name, what)
            except Exception:
                log.exception("%s: stopping %s failed; going on", name, what)

        if self.consumer is not None:
            await step("the consumer", self.consumer.stop(grace_seconds / 2))
            self.consumer = None
        if self.scheduler is not None:
            await step("the scheduler", self.scheduler.stop())
            self.scheduler = None
        if before_close is not None:  # the handlers are done with the service's own parts
            await step("the service's own parts", before_close())
        if self.relay is not None:
            await step("the last outbox delivery", self.relay.run_once())  # what the final transactions wrote
            await step("the outbox relay", self.relay.stop(timeout=remaining()))
            self.relay = None
        if self.engine is not None:
            await step("the database", self.engine.dispose())
            self.engine = None
        if self._owned.transport and self.transport is not None:
            await step("the transport", self.transport.close())
            self.transport = None
        if self._owned.broker_engine is not None:
            await step("the broker engine", self._owned.broker_engine.close())
            self._owned.broker_engine = None

    async def __aenter__(self) -> RunningService:
        try:
            return await self.start()
        except BaseException:
            await self.stop(0.5)
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- using -------------------------------------------------------------------------------------------

    async def publish(self, event: Event, *, topic: str) -> Envelope:
        """Publish in a transaction of its own (an outbox row, relayed at once). To publish with a
        change of the service's own data, use `publisher.publish(session, ...)` in that transaction."""
        if self.sessionmaker is None or self.publisher is None:
            raise RuntimeError(f"{self.service.name}: not running")
        async with self.sessionmaker() as session, session.begin():
            return await self.publisher.publish(session, event, topic=topic)

    # -- parts -------------------------------------------------------------------------------------------

    async def _make_transport(self) -> Transport:
        config = self.config
        if config.broker == "inprocess":
            from scte.bus.transports.inprocess import InProcessTransport
            from scte.queue.engine import Engine, EngineConfig

            path = config.broker_path or config.data_dir / "broker.db"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._owned.broker_engine = await Engine(EngineConfig(path=path)).start()
            return InProcessTransport(self._owned.broker_engine, config.prefix, topology=self.topology)
        from scte.bus.transports.aws import AwsTransport

        return AwsTransport(
            config.prefix,
            None if config.broker == "aws" else config.broker,
            topology=self.topology,
            credentials_file=config.credentials_file,
        )


def default_engine(url: str) -> AsyncEngine:
    """`sqlite+scte:///path`: the bus's SQLite engine (`scte.bus.database.sqlite_engine`, its directory
    created); any other URL: SQLAlchemy's `create_async_engine` (PostgreSQL with asyncpg...)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from scte.bus.database import sqlite_engine

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.get_driver_name() == "scte" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return sqlite_engine(parsed.database)
    return create_async_engine(url)
