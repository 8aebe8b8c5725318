"""Benchmark of the SQS wire server (`scte queue serve`), with moto_server in the same run for comparison.

    python bench/queue_server.py [--quick] [--clients N] [--seconds S] [--connections C] [--no-moto]

Needs the `bench` extra (`pip install -e '.[bench]'`: moto[server]). Prints one JSON document on stdout,
progress on stderr. Each server runs in its own process on a free port, on a fresh data directory, as a
user starts it (default log level: one JSON request line per request, here to /dev/null).

(a) throughput as boto3 users see it: N client processes (default 4), each with its own boto3 client and
    queue, run for S seconds
    - batched cycle: SendMessageBatch of 10, ReceiveMessage of up to 10, DeleteMessageBatch of what came;
    - unbatched cycle: SendMessage, ReceiveMessage of 1, DeleteMessage;
    against `scte queue serve` and against `moto_server`; messages/s = messages deleted per second (each
    went through send, receive and delete), calls/s = API calls per second. boto3 itself costs about
    0.7 ms of client CPU per call, so on a small machine the clients cap this figure, not the server.
(b) server capacity with a cheap client: one process of raw asyncio HTTP/1.1 keep-alive connections
    (default 16, uvloop), requests built once as bytes (unsigned: the default `--auth any` accepts them),
    running the batched cycle; messages/s and the server process's CPU use.
(c) long-poll wake-up: a ReceiveMessage with WaitTimeSeconds=20 waits on an empty queue; another connection
    sends one message; the time from the start of the send request to the arrival of the receive's
    response, p50 / p99 over K rounds.
(d) sequential latency on one keep-alive connection: SendMessage after SendMessage, p50 / p99 (a Nagle /
    delayed-ACK stall would show as about 40 ms; this was a timed assert in the tests, it is a measurement here).

ElasticMQ is not measured here: its figure (about 2,500 messages/s through its REST API) is the number
its authors publish, on their hardware, and is reported as such (`elasticmq_published_not_measured`).
Every measurement records the load before and after it and the CPU other processes used meanwhile
(bench/conditions.py); the run is called quiet only when every measurement was.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psutil

sys.path.insert(0, str(Path(__file__).parent))

from conditions import Conditions

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "AKIDBENCH", "aws_secret_access_key": "bench-secret"}
BODY = "x" * 200
ELASTICMQ_PUBLISHED_MSGS_PER_S = 2_500


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


@contextlib.contextmanager
def scte_server(log_level: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="scte-bench-"))
    cmd = [sys.executable, "-m", "scte.cli", "queue", "serve", "--port", str(port), "--data", str(data)]
    proc = subprocess.Popen([*cmd, "--log-level", log_level], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/health", proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


@contextlib.contextmanager
def moto_server() -> Iterator[tuple[str, int]]:
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        raise SystemExit("moto_server not found: pip install -e '.[bench]'")
    port = free_port()
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_up(f"http://127.0.0.1:{port}/moto-api/", proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


# -- (a) boto3 clients ---------------------------------------------------------------------------------------


def boto3_worker(endpoint: str, index: int, mode: str, start_at: float, seconds: float, out: Any) -> None:
    import boto3
    from botocore.config import Config

    sqs = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        **CREDENTIALS,
    )
    url = sqs.create_queue(QueueName=f"bench-{mode}-{index}-{os.getpid()}")["QueueUrl"]
    entries = [{"Id": str(i), "MessageBody": BODY} for i in range(10)]
    messages = calls = 0
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.time() + seconds
    while time.time() < deadline:
        if mode == "batched":
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            calls += 2
            if got:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
                )
                calls += 1
        else:
            sqs.send_message(QueueUrl=url, MessageBody=BODY)
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
            calls += 2
            for m in got:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                calls += 1
        messages += len(got)
    out.put((messages, calls, time.time() - deadline + seconds))


def boto3_run(endpoint: str, clients: int, mode: str, seconds: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 4.0  # time for the processes to import boto3 and create their queues
    procs = [ctx.Process(target=boto3_worker, args=(endpoint, i, mode, start_at, seconds, out)) for i in range(clients)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    messages = sum(r[0] for r in results)
    calls = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    return {
        "messages_per_s": round(messages / elapsed),
        "calls_per_s": round(calls / elapsed),
        "calls_per_s_per_client": round(calls / elapsed / clients),
        "messages": messages,
        "seconds": round(elapsed, 2),
    }


# -- raw HTTP client (b, c) ----------------------------------------------------------------------------------


class RawConnection:
    """One keep-alive HTTP/1.1 connection speaking the SQS JSON protocol with prebuilt requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host.encode()

    @classmethod
    async def open(cls, endpoint: str) -> RawConnection:
        host = endpoint.split("://", 1)[1]
        name, port = host.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(name, int(port))
        return cls(reader, writer, host)

    def request(self, action: str, payload: dict[str, Any]) -> bytes:
        body = orjson.dumps(payload)
        return (
            b"POST / HTTP/1.1\r\nHost: %b\r\nContent-Type: application/x-amz-json-1.0\r\n"
            b"X-Amz-Target: AmazonSQS.%b\r\nContent-Length: %d\r\n\r\n%b"
        ) % (self.host, action.encode(), len(body), body)

    async def call(self, request: bytes) -> Any:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        start = head.find(b"content-length:")
        length = int(head[start + 15 : head.find(b"\r\n", start)])
        body = await self.reader.readexactly(length)
        if head[9:12] != b"200":
            raise RuntimeError(f"{head[:12]!r}: {body[:300]!r}")
        return orjson.loads(body)

    def close(self) -> None:
        self.writer.close()


async def capacity(endpoint: str, connections: int, seconds: float, messages: int = 0) -> dict[str, Any]:
    conns = [await RawConnection.open(endpoint) for _ in range(connections)]
    urls = []
    for i, conn in enumerate(conns):
        created = await conn.call(conn.request("CreateQueue", {"QueueName": f"capacity-{i}-{os.getpid()}"}))
        urls.append(created["QueueUrl"])
    counts = [0] * connections
    calls = [0] * connections
    deadline = time.perf_counter() + seconds

    async def cycle(i: int) -> None:
        conn, url = conns[i], urls[i]
        send = conn.request(
            "SendMessageBatch", {"QueueUrl": url, "Entries": [{"Id": str(n), "MessageBody": BODY} for n in range(10)]}
        )
        receive = conn.request("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10})
        while (sum(counts) < messages) if messages else (time.perf_counter() < deadline):
            await conn.call(send)
            got = (await conn.call(receive)).get("Messages", [])
            calls[i] += 2
            if got:
                entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)]
                await conn.call(conn.request("DeleteMessageBatch", {"QueueUrl": url, "Entries": entries}))
                calls[i] += 1
                counts[i] += len(got)

    started = time.perf_counter()
    await asyncio.gather(*(cycle(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return {
        "messages_per_s": round(sum(counts) / elapsed),
        "messages": sum(counts),
        "calls_per_s": round(sum(calls) / elapsed),
        "seconds": round(elapsed, 2),
    }


def capacity_process(endpoint: str, connections: int, seconds: float, messages: int, out: Any) -> None:
    import uvloop

    out.put(uvloop.run(capacity(endpoint, connections, seconds, messages)))


def run_capacity(endpoint: str, server_pid: int, connections: int, seconds: float, messages: int = 0) -> dict[str, Any]:
    """(b); `messages` > 0: run until that many messages went through instead of for `seconds`."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    server = psutil.Process(server_pid)
    proc = ctx.Process(target=capacity_process, args=(endpoint, connections, seconds, messages, out))
    proc.start()
    time.sleep(min(2.0, seconds / 4))  # let the client import and connect
    cpu_before = server.cpu_times()
    wall = time.perf_counter()
    result: dict[str, Any] = out.get(timeout=seconds + 120 + messages / 1000)
    wall = time.perf_counter() - wall
    cpu_after = server.cpu_times()
    proc.join(30)
    used = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    result["connections"] = connections
    result["server_cpu_cores_busy"] = round(used / wall, 2)
    # Server CPU per message: what the server can do per core, even on a machine busy with other work.
    result["server_cpu_us_per_message"] = round(used * 1e6 / max(1, result["messages"]), 1)
    return result


async def wakeup(endpoint: str, rounds: int) -> dict[str, Any]:
    poller = await RawConnection.open(endpoint)
    sender = await RawConnection.open(endpoint)
    url = (await poller.call(poller.request("CreateQueue", {"QueueName": f"wakeup-{os.getpid()}"})))["QueueUrl"]
    receive = poller.request("ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 20, "MaxNumberOfMessages": 1})
    send = sender.request("SendMessage", {"QueueUrl": url, "MessageBody": BODY})
    samples = []
    for _ in range(rounds):
        waiting = asyncio.create_task(poller.call(receive))
        await asyncio.sleep(0.02)  # the receive is parked in its long poll
        sent_at = time.perf_counter()
        await sender.call(send)
        got = (await waiting)["Messages"]
        samples.append(time.perf_counter() - sent_at)
        await sender.call(sender.request("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": got[0]["ReceiptHandle"]}))
    poller.close()
    sender.close()
    samples.sort()
    return {
        "rounds": rounds,
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000, 2),
        "max_ms": round(samples[-1] * 1000, 2),
    }


async def sequential(endpoint: str, rounds: int) -> dict[str, Any]:
    conn = await RawConnection.open(endpoint)
    url = (await conn.call(conn.request("CreateQueue", {"QueueName": f"sequential-{os.getpid()}"})))["QueueUrl"]
    send = conn.request("SendMessage", {"QueueUrl": url, "MessageBody": BODY})
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await conn.call(send)
        samples.append(time.perf_counter() - started)
    conn.close()
    samples.sort()
    return {
        "rounds": rounds,
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000, 2),
        "max_ms": round(samples[-1] * 1000, 2),
    }


# -- the run -------------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs: 3 s per measurement, 2 clients, 50 wake-ups")
    parser.add_argument("--clients", type=int, help="boto3 client processes for (a) (default 4; quick 2)")
    parser.add_argument("--seconds", type=float, help="duration of each throughput measurement (default 10; quick 3)")
    parser.add_argument("--connections", type=int, default=16, help="raw connections for (b) (default 16)")
    parser.add_argument("--wakeups", type=int, help="long-poll wake-up rounds for (c) (default 300; quick 50)")
    parser.add_argument("--no-moto", action="store_true", help="skip moto_server (then no ratio)")
    parser.add_argument("--log-level", default="info", help="our server's --log-level (default info, as shipped)")
    parser.add_argument(
        "--capacity-only",
        type=int,
        metavar="MESSAGES",
        help="only (b), until MESSAGES messages went through (e.g. 50000): the server's CPU per message",
    )
    args = parser.parse_args()
    conditions = Conditions()
    if args.capacity_only:
        with scte_server(args.log_level) as (endpoint, pid), conditions.side("b_capacity"):
            result = run_capacity(endpoint, pid, args.connections, 0, args.capacity_only)
        report = {"machine": machine_info(), "b_capacity_batched": result, "conditions": conditions.report()}
        print(json.dumps(report, indent=2))
        conditions.say()
        return
    clients = args.clients or (2 if args.quick else 4)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    wakeups = args.wakeups or (50 if args.quick else 300)

    report: dict[str, Any] = {
        "machine": machine_info(),
        "config": {
            "mode": "quick" if args.quick else "full",
            "boto3_client_processes": clients,
            "seconds_per_measurement": seconds,
            "raw_connections": args.connections,
            "wakeup_rounds": wakeups,
            "body_bytes": len(BODY),
            "server_log_level": args.log_level,
        },
    }
    a: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        servers = {"scte": stack.enter_context(scte_server(args.log_level))}
        if not args.no_moto:
            servers["moto"] = stack.enter_context(moto_server())
        for mode in ("batched", "unbatched"):  # ours and moto's back to back: the same machine load
            for name, (endpoint, pid) in servers.items():
                progress(f"(a) {name}, boto3 {mode}, {clients} clients ...")
                with conditions.side(f"a_{name}_{mode}", extra_processes=[psutil.Process(pid)]):
                    a.setdefault(name, {})[mode] = boto3_run(endpoint, clients, mode, seconds)
                progress(f"(a) {name} {mode}: {a[name][mode]}")
            if "moto" in a:
                ratio = a["scte"][mode]["messages_per_s"] / max(1, a["moto"][mode]["messages_per_s"])
                a[f"ratio_{mode}"] = round(ratio, 1)
        endpoint, pid = servers["scte"]
        progress(f"(b) capacity, raw client, {args.connections} connections ...")
        with conditions.side("b_capacity", extra_processes=[psutil.Process(pid)]):
            report["b_capacity_batched"] = run_capacity(endpoint, pid, args.connections, seconds)
        progress(f"(b) {report['b_capacity_batched']}")
        progress("(c) long-poll wake-up ...")
        import uvloop

        with conditions.side("c_wakeup", extra_processes=[psutil.Process(pid)]):
            report["c_long_poll_wakeup"] = uvloop.run(wakeup(endpoint, wakeups))
        progress(f"(c) {report['c_long_poll_wakeup']}")
        with conditions.side("d_sequential", extra_processes=[psutil.Process(pid)]):
            report["d_sequential_send_latency"] = uvloop.run(sequential(endpoint, wakeups))
        progress(f"(d) {report['d_sequential_send_latency']}")
    report["a_boto3_throughput"] = a
    report["targets"] = {
        "a_batched_at_least_10x_moto": a.get("ratio_batched", 0) >= 10 if not args.no_moto else None,
        "b_at_least_20000_msgs_per_s": report["b_capacity_batched"]["messages_per_s"] >= 20_000,
        "c_p50_at_most_10ms": report["c_long_poll_wakeup"]["p50_ms"] <= 10,
        "d_p50_under_20ms_no_nagle_stall": report["d_sequential_send_latency"]["p50_ms"] < 20,
    }
    report["elasticmq_published_not_measured"] = {
        "rest_msgs_per_s": ELASTICMQ_PUBLISHED_MSGS_PER_S,
        "note": "the figure ElasticMQ's authors publish, on their hardware; not measured in this run",
    }
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["conditions"] = conditions.report()
    report["command"] = " ".join(sys.argv)
    print(json.dumps(report, indent=2))
    conditions.say()


if __name__ == "__main__":
    main()
