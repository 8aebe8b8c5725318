"""Helpers of the server tests: run `scte queue serve` in a subprocess; a query-protocol botocore model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ACCOUNT = "123456789012"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}


@dataclass
class Server:
    endpoint: str
    port: int
    data: Path
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float = 30) -> int:
        self.process.terminate()
        return self.process.wait(timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data: Path, *extra: str, stderr: IO[bytes] | None = None, env: dict[str, str] | None = None) -> Server:
    """`scte queue serve` on a free port; `stderr` receives its logs (the request lines among them)."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCTE_QUEUE_")} | (env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "scte.cli", "queue", "serve", "--port", str(port), "--data", str(data), *extra],
        env=environ,
        stderr=stderr,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(endpoint + "/health", timeout=1) as r:
                if r.status == 200:
                    return Server(endpoint, port, data, process)
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


# -- a botocore client speaking the query protocol -------------------------------------------------------
# botocore's SQS model is JSON-only now; turning it back into the query model needs the query names of
# the old model (the ones old SDKs send and expect), as moto keeps them.
_LIST_MEMBERS = {
    "AWSAccountIdList": "AWSAccountId",
    "ActionNameList": "ActionName",
    "AttributeNameList": "AttributeName",
    "BatchResultErrorEntryList": "BatchResultErrorEntry",
    "ChangeMessageVisibilityBatchRequestEntryList": "ChangeMessageVisibilityBatchRequestEntry",
    "ChangeMessageVisibilityBatchResultEntryList": "ChangeMessageVisibilityBatchResultEntry",
    "DeleteMessageBatchRequestEntryList": "DeleteMessageBatchRequestEntry",
    "DeleteMessageBatchResultEntryList": "DeleteMessageBatchResultEntry",
    "MessageAttributeNameList": "MessageAttributeName",
    "MessageSystemAttributeList": "MessageSystemAttributeName",
    "MessageList": "Message",
    "QueueUrlList": "QueueUrl",
    "SendMessageBatchRequestEntryList": "SendMessageBatchRequestEntry",
    "SendMessageBatchResultEntryList": "SendMessageBatchResultEntry",
    "TagKeyList": "TagKey",
}
_MAPS = {
    "QueueAttributeMap": ("Attribute", "Name", "Value"),
    "TagMap": ("Tag", "Key", "Value"),
    "MessageBodyAttributeMap": ("MessageAttribute", "Name", "Value"),
    "MessageSystemAttributeMap": ("Attribute", "Name", "Value"),
    "MessageBodySystemAttributeMap": ("MessageSystemAttribute", "Name", "Value"),
}


def query_model(directory: Path) -> None:
    """Write botocore's SQS model as a query-protocol model under `directory` (a botocore data path)."""
    import gzip
    import json
    import shutil

    import botocore

    source = Path(botocore.__file__).parent / "data" / "sqs" / "2012-11-05"
    model = json.loads(gzip.decompress((source / "service-2.json.gz").read_bytes()))
    model["metadata"].update(
        protocol="query", protocols=["query"], xmlNamespace="http://queue.amazonaws.com/doc/2012-11-05/"
    )
    model["metadata"].pop("awsQueryCompatible", None)
    shapes = model["shapes"]
    for name, shape in shapes.items():
        if name in _LIST_MEMBERS:
            shape["member"]["locationName"] = _LIST_MEMBERS[name]
        if name in _MAPS:
            shape["key"]["locationName"] = _MAPS[name][1]
            shape["value"]["locationName"] = _MAPS[name][2]
        for member in shape.get("members", {}).values():
            if member["shape"] in _MAPS:
                member["locationName"] = _MAPS[member["shape"]][0]
    for op_name, op in model["operations"].items():
        if "output" in op:
            op["output"]["resultWrapper"] = f"{op_name}Result"
    target = directory / "sqs" / "2012-11-05"
    target.mkdir(parents=True, exist_ok=True)
    (target / "service-2.json").write_text(json.dumps(model))
    shutil.copy(source / "endpoint-rule-set-1.json.gz", target / "endpoint-rule-set-1.json.gz")
