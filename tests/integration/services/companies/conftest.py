"""Fixtures of the companies service's integration tests (shared: service_harness.py)."""

from tests.integration.services.service_harness import NOW, Service, service_fixture

from scte.services.companies.service import build_runtime

service = service_fixture("companies", build_runtime)

__all__ = ["NOW", "Service", "service"]
