"""The declarative service (`scte.bus.service.Service`): handlers by decorator, the queue derived from
them, its database and publisher, run on the in-process engine and against the embedded broker, and
the same object under the test harness; `scte run` refusing what it cannot run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from scte.bus.consumer import Publish
from scte.bus.contracts import Event, EventRegistry
from scte.bus.service import BusConfig, Service
from scte.bus.testing import BusHarness
from scte.bus.topology import QueueSpec, Subscription, TopicSpec
from scte.cli import app

REGISTRY = EventRegistry()


@REGISTRY.register
class ExamPassed(Event):
    event_type: ClassVar[str] = "svctest.exam_passed.v1"
    member_id: str


@REGISTRY.register
class CertificateIssued(Event):
    event_type: ClassVar[str] = "svctest.certificate_issued.v1"
    member_id: str


@REGISTRY.register
class Ignored(Event):
    event_type: ClassVar[str] = "svctest.ignored.v1"


metadata = MetaData()
certificates = Table(
    "certificates",
    metadata,
    Column("member_id", String, primary_key=True),
    Column("issued", Integer, nullable=False),
)


def certificate_service(name: str = "certificates") -> Service:
    service = Service(
        name,
        topics=[TopicSpec("exams", events=(ExamPassed.event_type, Ignored.event_type)), TopicSpec("certificates")],
        metadata=metadata,
        registry=REGISTRY,
    )

    @service.handles(ExamPassed)  # the only topic declaring it: no topic= needed
    async def issue(event: ExamPassed, session: AsyncSession, publish: Publish) -> None:
        await session.execute(insert(certificates).values(member_id=event.member_id, issued=1))
        await publish(CertificateIssued(member_id=event.member_id), topic="certificates")

    return service


# -- declaring --------------------------------------------------------------------------------------------


def test_the_queue_is_derived_from_what_the_service_handles() -> None:
    service = certificate_service()
    assert service.queue == QueueSpec(
        "certificates", subscriptions=(Subscription("exams", event_types=(ExamPassed.event_type,)),)
    )
    assert [q.name for q in service.topology.queues] == ["certificates"]
    assert set(service.handlers) == {ExamPassed}


def test_a_service_that_only_publishes_has_no_queue() -> None:
    service = Service("exams", topics=[TopicSpec("exams")])
    assert service.queue is None
    assert service.topology.queues == ()


def test_declaration_mistakes_fail_at_once() -> None:
    service = Service("s", topics=[TopicSpec("a"), TopicSpec("b")], registry=REGISTRY)
    with pytest.raises(ValueError, match=r"say which topic carries svctest\.exam_passed\.v1"):
        service.handles(ExamPassed)
    with pytest.raises(ValueError, match="topic 'nowhere' is not one of the service's topics"):
        service.handles(ExamPassed, topic="nowhere")
    with pytest.raises(TypeError, match="at least one event type"):
        service.handles()

    @service.handles(ExamPassed, topic="a")
    async def first(event: ExamPassed) -> None: ...

    with pytest.raises(ValueError, match="already has a handler"):

        @service.handles(ExamPassed, topic="a")
        async def second(event: ExamPassed) -> None: ...

    assert service.handlers == {ExamPassed: first}  # the decorator returns the function unchanged


def test_config_from_arguments_over_environment_over_defaults(tmp_path: Path) -> None:
    env = {"SCTE_BUS_BROKER": "http://127.0.0.1:1", "SCTE_BUS_PREFIX": "dev-", "SCTE_BUS_PROVISION": "no"}
    config = BusConfig.from_env(env, broker="aws", data_dir=tmp_path)
    assert (config.broker, config.prefix, config.provision, config.data_dir) == ("aws", "dev-", False, tmp_path)
    assert BusConfig.from_env({}).broker == "inprocess"
    assert config.database_url("x") == f"sqlite+scte:///{(tmp_path / 'x.db').resolve()}"
    with pytest.raises(ValueError, match="unknown broker 'rabbit'"):
        BusConfig(broker="rabbit")
    with pytest.raises(ValueError, match="not a yes/no value"):
        BusConfig.from_env({"SCTE_BUS_PROVISION": "maybe"})


# -- running --------------------------------------------------------------------------------------------


async def wait_for(condition: object, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_runs_on_the_in_process_engine_with_its_own_database_and_publisher(tmp_path: Path) -> None:
    service = certificate_service()
    async with service.running(broker="inprocess", data_dir=tmp_path) as running:
        assert running.consumer is not None and running.consumer.queue == "certificates"
        await running.publish(ExamPassed(member_id="m1"), topic="exams")
        await running.publish(ExamPassed(member_id="m2"), topic="exams")
        assert running.sessionmaker is not None

        async def both_issued() -> bool:
            assert running.sessionmaker is not None
            async with running.sessionmaker() as session:
                return (await session.scalar(select(func.count()).select_from(certificates))) == 2

        await wait_for(both_issued)
        assert running.consumer.stats.processed == 2
    assert (tmp_path / "certificates.db").exists() and (tmp_path / "broker.db").exists()


async def test_runs_against_the_embedded_broker(tmp_path: Path) -> None:
    """Two services, two databases, one `scte queue serve`: the publisher's event reaches the consumer's handler."""
    from server_harness import start_server

    server = start_server(tmp_path / "broker")
    try:
        consumer = certificate_service()
        publisher = Service("exams", topics=consumer.topics, registry=REGISTRY)
        config = BusConfig(broker=server.endpoint, data_dir=tmp_path)
        async with consumer.running(config) as consuming, publisher.running(config) as publishing:
            assert publishing.consumer is None
            await publishing.publish(ExamPassed(member_id="m9"), topic="exams")

            async def issued() -> bool:
                assert consuming.sessionmaker is not None
                async with consuming.sessionmaker() as session:
                    return (await session.scalar(select(certificates.c.issued))) == 1

            await wait_for(issued)
    finally:
        server.stop()


async def test_the_harness_runs_the_service_as_declared() -> None:
    service = certificate_service()
    async with BusHarness.of(service) as bus:
        await bus.publish(ExamPassed(member_id="m1"), topic="exams")
        await bus.publish(ExamPassed(member_id="m1"), topic="exams")  # a second event: its insert fails
        outcomes = await bus.run_until_idle()
        assert [o.value for o in outcomes].count("processed") == 1
        assert bus.published(CertificateIssued) == [CertificateIssued(member_id="m1")]
        async with bus.sessionmaker() as session:
            assert (await session.scalar(select(func.count()).select_from(certificates))) == 1


# -- scte run -------------------------------------------------------------------------------------------

runner = CliRunner()


def refusal(*args: str) -> str:
    """The error `scte run` answers with (exit code 2), its box and line breaks taken out."""
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 2, result.output
    return " ".join(result.output.replace("│", " ").split())


def test_scte_run_refuses_what_it_cannot_run() -> None:
    assert "cannot load 'no_such_module_xyz:service'" in refusal("no_such_module_xyz:service")
    assert "is a type, not a scte.bus.service.Service" in refusal("scte.bus.service:BusConfig")
    assert "expected 'package.module:ATTRIBUTE'" in refusal("nocolon")
    assert "unknown broker 'rabbit'" in refusal("tests.integration.bus.test_service:SERVICE", "--broker", "rabbit")


SERVICE = certificate_service("cli-certificates")


def test_scte_run_serves_until_sigterm_and_stops_cleanly(tmp_path: Path) -> None:
    """In a subprocess: the in-process engine, the service's tables made, a clean stop on SIGTERM."""
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scte.cli", "run", "tests.integration.bus.test_service:SERVICE", "--data", tmp_path],
        env=env,
        cwd=root,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stderr or ():
            if "running on inprocess" in line:
                break
        else:
            pytest.fail(f"scte run ended first: {proc.wait()}")
        proc.terminate()
        assert proc.wait(timeout=60) == 0
        assert (tmp_path / "cli-certificates.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
