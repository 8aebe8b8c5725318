"""The session's platform under `make test-replicas` (SCTE_E2E_REPLICAS): the processes the flow tests
run on. Each replicated service has its processes, each consuming the service's one queue; only
replica 0 serves the API (the others answer `/health` and nothing else). That the replicas share the
work, exactly once and in order, is shown by tests/integration/supervision/test_replica_consumers.py.
Skipped when the platform runs one process each.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest
from tests.harness.platform import REPLICAS_ENV, Platform

from scte.platform import SERVICES
from scte.supervision.replicas import parse_replicas

REPLICAS = parse_replicas(os.environ.get(REPLICAS_ENV), SERVICES)

pytestmark = pytest.mark.skipif(not REPLICAS, reason=f"{REPLICAS_ENV} unset: one process per service")


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def test_each_replica_consumes_the_services_queue_and_only_replica_0_serves_the_api(platform: Platform) -> None:
    children = platform.registry()["children"]
    for service, count in REPLICAS.items():
        names = platform.processes_of(service)
        assert len(names) == count, names
        queues = set()
        for name in names:
            status, health = _get(children[name]["health"])
            assert status == 200, (name, health)
            queues.add(health["consumer"]["queue"])
        assert len(queues) == 1, queues  # one queue, several consumers
        # the API: on replica 0's port (the gateway's target), not on the others'
        api_route = "/openapi.json"
        status, spec = _get(f"http://127.0.0.1:{children[service]['port']}{api_route}")
        assert status == 200 and len(spec["paths"]) > 1
        for name in names[1:]:
            status, spec = _get(f"http://127.0.0.1:{children[name]['port']}{api_route}")
            assert status == 200 and set(spec["paths"]) <= {"/health", "/metrics"}, (name, sorted(spec["paths"]))
