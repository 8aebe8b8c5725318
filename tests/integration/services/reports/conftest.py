"""Fixtures of the reports service's integration tests (shared: service_harness.py)."""

from tests.integration.services.service_harness import NOW, Service, service_fixture

from scte.services.reports.service import build_runtime

service = service_fixture("reports", build_runtime)

__all__ = ["NOW", "Service", "service"]
