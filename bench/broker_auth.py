"""What `--auth strict` (SigV4 verification plus the queue's policy) costs the broker on the batched cycle,
against `--auth any` in the same run.

    python bench/broker_auth.py [--seconds S] [--connections C] [--rounds R] [--cycles N]

The batched cycle of `bench/queue_server.py` (b): SendMessageBatch of 10, ReceiveMessage of up to 10,
DeleteMessageBatch of what came. Every request is SigV4-signed by a small signer in the client, with
`X-Amz-Content-SHA256` (the same signing for both modes, so the client's work is the same; `--auth any`
ignores the signature), by a key whose principal is a service, not the owner: the queue's policy (the one
`scte up` gives a consuming service, `scte.deploy.policies`) is evaluated on every call in strict mode.

(a) in process: `SqsApp.respond` called directly (no sockets, no HTTP parsing), N cycles per round; the
    broker's CPU per message is the process's CPU time spent inside `respond` (the store thread's
    included), the client's signing and JSON outside it. The figure that holds on a busy machine.
(b) over HTTP: `scte queue serve` in its own process, one client process of C raw keep-alive connections
    (uvloop) for S seconds; messages/s and the broker process's CPU per message.

Modes alternate (any, strict, any, strict ...), R rounds each; reported per mode: the median of the rounds,
and strict's overhead over any. Prints one JSON document on stdout (with `conditions`, bench/conditions.py),
progress on stderr.
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

from conditions import Conditions
from queue_server import BODY, RawConnection, free_port, progress, wait_up

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
        write_credentials(data / "credentials.json")
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

    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ADMIN[0], aws_secret_access_key=ADMIN[1]
    )
    urls = []
    for i in range(count):
        name = f"bench-{i}"
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": consumer_policy(name)})
        urls.append(url)
    return urls


MODES = {"any": (), "strict": ("--auth", "strict", "--credentials", "{data}/credentials.json")}


def write_credentials(path: Path) -> None:
    keys = [
        {"access_key_id": ADMIN[0], "secret_access_key": ADMIN[1], "principal": f"arn:aws:iam::{ACCOUNT}:root"},
        {"access_key_id": SERVICE[0], "secret_access_key": SERVICE[1], "principal": SERVICE_ARN},
    ]
    keys[0]["admin"] = True
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"keys": keys}, f)


def consumer_policy(name: str) -> str:
    from scte.deploy.policies import CONSUMER_ACTIONS

    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    statements = [
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
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


async def in_process(mode: str, cycles: int) -> dict[str, float]:
    """(a): the cycle through `SqsApp.respond`; the broker's CPU per message."""
    from scte.queue.server.app import SqsApp
    from scte.queue.server.config import ServerConfig

    data = Path(tempfile.mkdtemp(prefix="scte-bench-auth-"))
    try:
        credentials = data / "credentials.json"
        write_credentials(credentials)
        strict = mode == "strict"
        app = SqsApp(
            ServerConfig(
                data_dir=data / "q",
                auth="strict" if strict else "any",
                credentials_file=credentials if strict else None,
            )
        )
        await app.startup()
        assert app.engine is not None
        await app.engine.create_queue("bench-0", {"Policy": consumer_policy("bench-0")})
        signer = Signer(*SERVICE)
        host = b"127.0.0.1:9324"
        url = f"http://127.0.0.1:9324/{ACCOUNT}/bench-0"
        spent = [0.0]

        async def call(action: str, payload: dict[str, Any]) -> Any:
            body = orjson.dumps(payload)
            target = b"AmazonSQS." + action.encode()
            headers = [(b"host", host), (b"content-type", b"application/x-amz-json-1.0"), (b"x-amz-target", target)]
            for line in signer.headers(host, target, body).decode().strip().split("\r\n"):
                name, value = line.split(": ", 1)
                headers.append((name.lower().encode(), value.encode()))
            scope = {
                "type": "http",
                "method": "POST",
                "path": "/",
                "raw_path": b"/",
                "query_string": b"",
                "headers": headers,
                "scheme": "http",
            }
            started = time.process_time()
            status, _headers, out = await app.respond(scope, app.head(scope), body)
            spent[0] += time.process_time() - started
            if status != 200:
                raise RuntimeError(out[:300])
            return orjson.loads(out)

        entries = [{"Id": str(n), "MessageBody": BODY} for n in range(10)]
        messages = 0
        for _ in range(cycles):
            await call("SendMessageBatch", {"QueueUrl": url, "Entries": entries})
            got = (await call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10})).get("Messages", [])
            if got:
                handles = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)]
                await call("DeleteMessageBatch", {"QueueUrl": url, "Entries": handles})
                messages += len(got)
        await app.drain()
        return {"broker_cpu_us_per_message": spent[0] * 1e6 / max(1, messages), "messages": messages}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _summary(runs: dict[str, list[dict[str, float]]], keys: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, results in runs.items():
        out[mode] = {k: round(statistics.median(r[k] for r in results), 1) for k in keys}
        out[mode]["rounds"] = [{k: round(v, 1) for k, v in r.items()} for r in results]
    any_, strict = out["any"], out["strict"]
    overhead = {}
    for k in keys:
        change = 100 * (strict[k] / any_[k] - 1)
        overhead[f"{k}_change_percent"] = round(change, 1)
    out["strict_vs_any"] = overhead
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="(b): seconds per round")
    parser.add_argument("--connections", type=int, default=8, help="(b): keep-alive connections")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=3000, help="(a): batched cycles per round")
    parser.add_argument("--skip-http", action="store_true", help="(a) only")
    args = parser.parse_args()
    conditions = Conditions()
    report: dict[str, Any] = {"cycles": args.cycles, "seconds": args.seconds, "connections": args.connections}
    import uvloop

    inproc: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for round_ in range(args.rounds):
        for mode in MODES:
            with conditions.side(f"a_{mode}_{round_ + 1}"):
                result = uvloop.run(in_process(mode, args.cycles))
            inproc[mode].append(result)
            progress(f"(a) round {round_ + 1} {mode}: {result['broker_cpu_us_per_message']:.1f} us per message")
    report["a_in_process"] = _summary(inproc, ("broker_cpu_us_per_message",))
    if not args.skip_http:
        http: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for round_ in range(args.rounds):
            for mode, extra in MODES.items():
                with (
                    broker(*extra) as (endpoint, pid),
                    conditions.side(f"b_{mode}_{round_ + 1}", extra_processes=[psutil.Process(pid)]),
                ):
                    queues = make_queues(endpoint, args.connections)
                    result = measure(endpoint, pid, queues, args.seconds)
                http[mode].append(result)
                progress(
                    f"(b) round {round_ + 1} {mode}: {result['messages_per_s']:.0f} msg/s, "
                    f"{result['server_cpu_us_per_message']:.1f} us broker CPU per message"
                )
        report["b_http"] = _summary(http, ("messages_per_s", "server_cpu_us_per_message"))
    report["conditions"] = conditions.report()
    conditions.say()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
