"""Every service keeps the members service's session revocations: its queue subscribes to
`member.sessions_revoked.v1`, its runtime handles it, its migrations create `auth_revocations`, and
each service's migration chain still has a single head."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from scte.bus.topology import QueueSpec, Subscription
from scte.contracts.members import MemberSessionsRevoked
from scte.kit.db import migrations_dir
from scte.kit.revocation import receives_revocations, with_revocations
from scte.platform import SERVICES, service_module

OTHERS = sorted(name for name in SERVICES if name != "members")


@pytest.mark.parametrize("name", OTHERS)
def test_every_other_service_consumes_revocations(name: str) -> None:
    module = service_module(name)
    assert module is not None
    assert receives_revocations(module.QUEUE), f"{name}: QUEUE = with_revocations(QueueSpec(...))"
    runtime = module.build_runtime()
    # the runtime's consumer, or the service's own (activity runs one without the inbox)
    assert MemberSessionsRevoked in runtime.handlers or MemberSessionsRevoked in module.handlers.HANDLERS


def test_members_revokes_in_its_own_transaction_and_does_not_consume_its_own_event() -> None:
    module = service_module("members")
    assert module is not None and not receives_revocations(module.QUEUE)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_migrations_have_one_head_and_create_the_revocation_table(name: str) -> None:
    package = SERVICES[name].module
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(package)))
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1, f"{name}: several migration heads {script.get_heads()}"
    sources = [Path(str(rev.path)).read_text(encoding="utf-8") for rev in script.walk_revisions()]
    assert any('"auth_revocations"' in s for s in sources), name
    assert "auth_revocations" in importlib.import_module(f"{package}.db").metadata.tables


def test_with_revocations_merges_into_the_members_subscription() -> None:
    event = MemberSessionsRevoked.event_type
    alone = with_revocations(QueueSpec("q"))
    assert alone.subscriptions == (Subscription("members", event_types=(event,)),)
    merged = with_revocations(
        QueueSpec("q", subscriptions=(Subscription("members", event_types=("member.registered.v1",)),))
    )
    assert merged.subscriptions == (Subscription("members", event_types=("member.registered.v1", event)),)
    everything = QueueSpec("q", subscriptions=(Subscription("members"),))
    assert with_revocations(everything) is everything
    assert with_revocations(merged) is merged
