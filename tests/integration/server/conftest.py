"""Fixtures: a real `scte queue serve` in a subprocess on a free port, and boto3 clients for it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
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
def sqs_query_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """(server, access key, secret) -> a botocore client on the query protocol."""
    import botocore.session

    models = tmp_path_factory.mktemp("models")
    query_model(models)

    def make(server: Server, key: str, secret: str) -> Any:
        session = botocore.session.Session()
        session.get_component("data_loader").search_paths.insert(0, str(models))
        client = boto3.Session(botocore_session=session).client(
            "sqs", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id=key, aws_secret_access_key=secret
        )
        assert client.meta.service_model.protocol == "query"
        return client

    return make


@pytest.fixture(scope="module")
def sqs_query(server: Server, sqs_query_factory: Callable[..., Any]) -> Any:
    return sqs_query_factory(server, CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"])
