"""The ten services are declared as `PlatformService`s (a `scte.bus.service.Service` with their HTTP
API): one object each, whose runtime runs its bus half through the bus service; `scte run` options
become the platform's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from scte.bus.service import BusConfig, Service
from scte.kit.runtime import ServiceRuntime
from scte.kit.service import PlatformService, settings_for
from scte.platform import SERVICES, service_module


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_is_one_declared_object(name: str, tmp_path: Path) -> None:
    module = service_module(name)
    assert module is not None
    service = module.service
    assert isinstance(service, PlatformService) and isinstance(service, Service)
    assert service.name == name and service.queue == module.QUEUE
    runtime = module.build_runtime(settings_for(name, data_dir=tmp_path, broker="inprocess"))
    assert isinstance(runtime, ServiceRuntime)
    assert runtime.bus.queue == module.QUEUE and runtime.topology == service.topology
    assert set(service.handlers) <= set(runtime.bus.handlers)  # plus the revocation handler, where received
    assert runtime.settings.data_dir == tmp_path and runtime.settings.transport == "inprocess"


def test_scte_run_options_become_settings(tmp_path: Path) -> None:
    assert settings_for("search") is None  # nothing stated: the environment's settings
    settings = settings_for(
        "search",
        BusConfig(broker="http://127.0.0.1:1", database="sqlite+scte:///x.db", data_dir=tmp_path, prefix="p-"),
    )
    assert settings is not None
    assert (settings.transport, settings.aws_endpoint_url, settings.queue_prefix) == ("aws", "http://127.0.0.1:1", "p-")
    assert settings.database_url("search") == "sqlite+scte:///x.db" and settings.data_dir == tmp_path
    aws = settings_for("search", broker="aws", provision=False)
    assert aws is not None and aws.aws_endpoint_url is None and aws.provision_on_start is False
    with pytest.raises(ValueError, match="takes its broker_path from SCTE_"):
        settings_for("search", broker_path=tmp_path / "b.db")
    with pytest.raises(ValueError, match="unknown broker 'rabbit'"):
        settings_for("search", broker="rabbit")
