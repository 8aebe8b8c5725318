"""Fixtures: a real `scte queue serve` in a subprocess on a free port, and boto3 clients for it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests import server_harness (importlib import mode)

from server_harness import CREDENTIALS, REGION, Server, query_model, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("broker"))
    yield srv
    if srv.process.poll() is None:
        srv.stop()


@pytest.fixture(scope="module")
def sqs(server: Server) -> Any:
    return boto3.client("sqs", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS)


@pytest.fixture(scope="module")
def sqs_query(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Any:
    import botocore.session

    models = tmp_path_factory.mktemp("models")
    query_model(models)
    session = botocore.session.Session()
    session.get_component("data_loader").search_paths.insert(0, str(models))
    client = boto3.Session(botocore_session=session).client(
        "sqs", endpoint_url=server.endpoint, region_name=REGION, **CREDENTIALS
    )
    assert client.meta.service_model.protocol == "query"
    return client
