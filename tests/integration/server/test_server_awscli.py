"""The AWS CLI (awscli from PyPI) against the server: create, send, receive, delete, attributes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from server_harness import ACCOUNT, Server


def aws(server: Server, *args: str) -> Any:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    cmd = [sys.executable, "-m", "awscli", "--endpoint-url", server.endpoint, "--output", "json", "sqs", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_aws_cli(server: Server) -> None:
    url = aws(server, "create-queue", "--queue-name", "cli-queue")["QueueUrl"]
    assert url == f"{server.endpoint}/queue/us-east-1/{ACCOUNT}/cli-queue"
    sent = aws(server, "send-message", "--queue-url", url, "--message-body", "from the cli")
    got = aws(server, "receive-message", "--queue-url", url, "--wait-time-seconds", "1")["Messages"]
    assert got[0]["MessageId"] == sent["MessageId"] and got[0]["Body"] == "from the cli"
    aws(server, "delete-message", "--queue-url", url, "--receipt-handle", got[0]["ReceiptHandle"])
    attrs = aws(server, "get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert attrs["QueueArn"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:cli-queue"
