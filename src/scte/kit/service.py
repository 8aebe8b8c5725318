"""A platform service, declared once: a `scte.bus.service.Service` with the platform's HTTP API, tokens,
settings and migrations.

    service = PlatformService(
        "certification",
        queue=QUEUE,
        handlers=handlers.HANDLERS,          # or @service.handles(ExamPassed) on each handler
        routers=[api.router],
        migrations="scte.services.certification",
        domain_errors={CertificationError: 409},
    )
    build_runtime = service.runtime          # (settings=None, *, clock=None, transport=None) -> ServiceRuntime
    main = service.run                       # python -m scte.services.certification, or scte run ...:service

`runtime()` gives the process (`ServiceRuntime`: the API served with uvicorn, the bus parts, background
tasks); tests use it as before (`async with service.runtime(settings) as rt:`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from scte.bus.consumer import Handlers
from scte.bus.service import BusConfig, Service
from scte.bus.topology import QueueSpec, TopicSpec
from scte.kit.runtime import BackgroundTask, ServiceRuntime
from scte.kit.settings import Settings, get_settings

if TYPE_CHECKING:
    from scte.bus.transport import Transport
    from scte.kit.app import ServiceContext
    from scte.kit.clock import Clock

__all__ = ["PlatformService", "settings_for"]

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]
Dependencies = Mapping[str, object] | Callable[[Settings], Mapping[str, object]]


class PlatformService(Service):
    """What a platform service is made of; `runtime()` builds its process, `run()` runs it."""

    def __init__(
        self,
        name: str,
        *,
        queue: QueueSpec | None = None,
        handlers: Handlers | None = None,
        routers: Sequence[APIRouter] = (),
        migrations: str | None = None,
        domain_errors: Mapping[type[Exception], int] | None = None,
        exception_handlers: Mapping[type[Exception], ExceptionHandler] | None = None,
        dependencies: Dependencies | None = None,
        issues_tokens: bool = False,
        background: Sequence[BackgroundTask] = (),
        on_start: Callable[[ServiceContext], Awaitable[None]] | None = None,
        on_stop: Callable[[ServiceContext], Awaitable[None]] | None = None,
        concurrency: int = 10,
        topics: Sequence[TopicSpec] | None = None,
    ) -> None:
        if topics is None:
            from scte.platform import TOPICS

            topics = TOPICS
        super().__init__(name, topics=topics, queue=queue, handlers=handlers, concurrency=concurrency)
        self.routers = list(routers)
        self.migrations = migrations
        self.domain_errors = dict(domain_errors or {})
        self.exception_handlers = dict(exception_handlers or {})
        self.service_dependencies = dependencies
        self.issues_tokens = issues_tokens
        self.background = list(background)
        self.on_start = on_start
        self.on_stop = on_stop

    def runtime(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        transport: Transport | None = None,
        dependencies: Mapping[str, object] | None = None,
    ) -> ServiceRuntime:
        """The service's process on these settings (default: the environment's); `dependencies` are
        added to (or replace) the declared ones."""
        settings = settings or get_settings()
        given = self.service_dependencies
        declared = dict(given(settings) if callable(given) else given or {})
        runtime = ServiceRuntime(
            self.name,
            settings,
            routers=self.routers,
            queue=self.queue,
            handlers=self.handlers,
            migrations=self.migrations,
            domain_errors=self.domain_errors,
            dependencies={**declared, **(dependencies or {})},
            topics=self.topics,
            issues_tokens=self.issues_tokens,
            background=self.background,
            on_start=self.on_start,
            on_stop=self.on_stop,
            concurrency=self.concurrency,
            transport=transport,
            clock=clock,
        )
        for error, handler in self.exception_handlers.items():
            runtime.app.add_exception_handler(error, handler)
        return runtime

    def run(self, config: BusConfig | None = None, **config_values: Any) -> None:
        """Serve the API and the bus until SIGTERM/SIGINT, on the environment's settings (`SCTE_*`) and
        what is given here (`scte run --broker/--database/...`: `BusConfig` fields)."""
        self.runtime(settings_for(self.name, config, **config_values)).run()


def settings_for(name: str, config: BusConfig | None = None, **config_values: Any) -> Settings | None:
    """The environment's settings with what is given: the fields of `config` that are set, and the
    `BusConfig` fields in `config_values` that are not None; None when nothing is given (the process
    then reads its settings as usual). The broker's file and key file are the platform's own."""
    values = {k: v for k, v in (config.__dict__ if config is not None else {}).items() if v is not None}
    values.update({k: v for k, v in config_values.items() if v is not None})
    if not values:
        return None
    BusConfig(**values)  # the same checks as `scte run` (a broker it does not know)
    overrides: dict[str, Any] = {}
    broker = values.pop("broker", None)
    if broker == "inprocess":
        overrides["transport"] = "inprocess"
    elif broker is not None:
        overrides.update(transport="aws", broker=broker)  # a URL or aws: production mode (`Settings.production`)
    if "database" in values:
        overrides["database_urls"] = {name: values.pop("database")}
    for field, setting in (("data_dir", "data_dir"), ("prefix", "queue_prefix"), ("provision", "provision_on_start")):
        if field in values:
            overrides[setting] = values.pop(field)
    if values:
        raise ValueError(f"{name}: a platform service takes its {', '.join(sorted(values))} from SCTE_* settings")
    return Settings(**overrides)
