"""What `--auth strict` (SigV4 verification plus the queue's policy) costs the broker on the batched cycle,
against `--auth any` in the same run.

    python bench/broker_auth.py [--seconds S] [--connections C] [--rounds R]

Two brokers on fresh data directories: one `--auth any`, one `--auth strict --credentials FILE` whose queues
carry a policy granting a service principal (not the owner: the policy is evaluated on every call) what the
cycle needs. The client is one process of raw asyncio keep-alive connections (uvloop) running the batched
cycle of `bench/queue_server.py` (b): SendMessageBatch of 10, ReceiveMessage of up to 10, DeleteMessageBatch.
Every request is SigV4-signed by a small signer in the client (the same signing for both brokers, so the
client's work is the same; the `any` broker ignores the signature), with `X-Amz-Content-SHA256`, so the
strict broker verifies the signature, the body's hash and the policy on every call.

The brokers run one after the other, alternating, R rounds each. Reported per mode: messages/s and, the
figure that holds on a busy machine, the broker's CPU per message (its process's CPU time over the
messages that went through), both the median of the rounds; and strict's overhead over any on each.
Prints one JSON document on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil

from queue_server import BODY, RawConnection, free_port, machine_info, progress, wait_up

REGION = "us-east-1"
ACCOUNT = "123456789012"
ADMIN = ("AKIABENCHOWNER01", "bench-owner-secret-0123456789")
SERVICE = ("AKIABENCHSERVICE", "bench-service-secret-0123456789")
SERVICE_ARN = f"arn:aws:iam::{ACCOUNT}:role/scte-bench"


class Signer:
    """SigV4 for the SQS JSON protocol (POST /), the signing key cached per day."""

    def __init__(self, key: str, secret: str) -> None:
        self.key, self.secret = key, secret
        self._day = ""
        self._signing_key = b""

    def headers(self, host: bytes, target: bytes, body: bytes) -> bytes:
        now = datetime.datetime.now(datetime.UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        if day != self._day:
            k = hmac.new(b"AWS4" + self.secret.encode(), day.encode(), hashlib.sha256).digest()
            for part in (REGION, "sqs", "aws4_request"):
                k = hmac.new(k, part.encode(), hashlib.sha256).digest()
            self._day, self._signing_key = day, k
        payload = hashlib.sha256(body).hexdigest()
        signed = "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target"
        canonical = (
            f"POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:{host.decode()}\n"
            f"x-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\nx-amz-target:{target.decode()}\n\n"
            f"{signed}\n{payload}"
        )
        scope = f"{day}/{REGION}/sqs/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        return (
            f"X-Amz-Date: {amz_date}\r\nX-Amz-Content-SHA256: {payload}\r\n"
            f"Authorization: AWS4-HMAC-SHA256 Credential={self.key}/{scope}, SignedHeaders={signed}, "
            f"Signature={signature}\r\n"
        ).encode()


class SignedConnection(RawConnection):
    signer: Signer

    def request(self, action: str, payload: dict[str, Any]) -> bytes:
        body = orjson.dumps(payload)
        target = b"AmazonSQS." + action.encode()
        return (
            b"POST / HTTP/1.1\r\nHost: %b\r\nContent-Type: application/x-amz-json-1.0\r\n"
            b"X-Amz-Target: %b\r\n%bContent-Length: %d\r\n\r\n%b"
        ) % (self.host, target, self.signer.headers(self.host, target, body), len(body), body)


async def cycle_run(endpoint: str, queues: list[str], seconds: float) -> dict[str, Any]:
    conns: list[SignedConnection] = []
    for _ in queues:
        conn = await SignedConnection.open(endpoint)
        conn.signer = Signer(*SERVICE)
        conns.append(conn)
    counts = [0] * len(queues)
    deadline = time.perf_counter() + seconds

    async def cycle(i: int) -> None:
        conn, url = conns[i], queues[i]
        entries = [{"Id": str(n), "MessageBody": BODY} for n in range(10)]
        while time.perf_counter() < deadline:
            await conn.call(conn.request("SendMessageBatch", {"QueueUrl": url, "Entries": entries}))
            got = (await conn.call(conn.request("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10}))).get(
                "Messages", []
            )
            if got:
                handles = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)]
                await conn.call(conn.request("DeleteMessageBatch", {"QueueUrl": url, "Entries": handles}))
                counts[i] += len(got)

    started = time.perf_counter()
    await asyncio.gather(*(cycle(i) for i in range(len(queues))))
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return {"messages": sum(counts), "seconds": elapsed}


def cycle_process(endpoint: str, queues: list[str], seconds: float, out: Any) -> None:
    import uvloop

    out.put(uvloop.run(cycle_run(endpoint, queues, seconds)))


def measure(endpoint: str, pid: int, queues: list[str], seconds: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    server = psutil.Process(pid)
    proc = ctx.Process(target=cycle_process, args=(endpoint, queues, seconds, out))
    proc.start()
    time.sleep(min(2.0, seconds / 4))
    before = server.cpu_times()
    wall = time.perf_counter()
    result = out.get(timeout=seconds + 120)
    wall = time.perf_counter() - wall
    after = server.cpu_times()
    proc.join(30)
    used = (after.user - before.user) + (after.system - before.system)
    return {
        "messages_per_s": result["messages"] / result["seconds"],
        "server_cpu_us_per_message": used * 1e6 / max(1, result["messages"]),
    }


@contextlib.contextmanager
def broker(*extra: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="scte-bench-auth-"))
    cmd = [sys.executable, "-m", "scte.cli", "queue", "serve", "--port", str(port), "--data", str(data / "q")]
    extra = tuple(a.replace("{data}", str(data)) for a in extra)
    if "--credentials" in extra:
        credentials = data / "credentials.json"
        keys = [
            {"access_key_id": ADMIN[0], "secret_access_key": ADMIN[1], "principal": f"arn:aws:iam::{ACCOUNT}:root"},
            {"access_key_id": SERVICE[0], "secret_access_key": SERVICE[1], "principal": SERVICE_ARN},
        ]
        keys[0]["admin"] = True
        fd = os.open(credentials, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"keys": keys}, f)
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_up(f"http://127.0.0.1:{port}/health", proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


def make_queues(endpoint: str, count: int) -> list[str]:
    """The cycle's queues, made by the owner, each with the policy a consuming service gets from `scte up`."""
    import boto3

    from scte.deploy.policies import CONSUMER_ACTIONS

    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ADMIN[0], aws_secret_access_key=ADMIN[1]
    )
    urls = []
    for i in range(count):
        name = f"bench-{i}"
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "subscriber-consumes",
                    "Effect": "Allow",
                    "Principal": {"AWS": SERVICE_ARN},
                    "Action": list(CONSUMER_ACTIONS),
                    "Resource": arn,
                },
                {
                    "Sid": "sns-delivers",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:bench"}},
                },
            ],
        }
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        urls.append(url)
    return urls


MODES = {"any": (), "strict": ("--auth", "strict", "--credentials", "{data}/credentials.json")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    machine = machine_info()
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for round_ in range(args.rounds):
        for mode, extra in MODES.items():
            with broker(*extra) as (endpoint, pid):
                queues = make_queues(endpoint, args.connections)
                result = measure(endpoint, pid, queues, args.seconds)
            runs[mode].append(result)
            progress(
                f"round {round_ + 1} {mode}: {result['messages_per_s']:.0f} msg/s, "
                f"{result['server_cpu_us_per_message']:.1f} us broker CPU per message"
            )
    summary: dict[str, Any] = {}
    for mode, results in runs.items():
        summary[mode] = {
            "messages_per_s": round(statistics.median(r["messages_per_s"] for r in results)),
            "server_cpu_us_per_message": round(statistics.median(r["server_cpu_us_per_message"] for r in results), 1),
            "rounds": [{k: round(v, 1) for k, v in r.items()} for r in results],
        }
    any_, strict = summary["any"], summary["strict"]
    summary["strict_vs_any"] = {
        "throughput_drop_percent": round(100 * (1 - strict["messages_per_s"] / any_["messages_per_s"]), 1),
        "cpu_per_message_increase_percent": round(
            100 * (strict["server_cpu_us_per_message"] / any_["server_cpu_us_per_message"] - 1), 1
        ),
    }
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(
        json.dumps(
            {"machine": machine, "seconds": args.seconds, "connections": args.connections, "results": summary},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
