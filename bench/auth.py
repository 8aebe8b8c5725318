"""Benchmark of the members service under a flood of bogus sign-ins: before and after the bounded hashing.

    python bench/auth.py [--before-ref REF] [--concurrency 32] [--seconds 15] [--json FILE]

Each variant is the members service as `scte up` runs it (its own process, uvicorn, SQLite in a fresh
data directory, the in-process broker), started from a source tree:

- before: the tree of `--before-ref` (default 9c5fcdb, main when the accounts work began: argon2 via
  `asyncio.to_thread`, no limits), extracted with `git archive`;
- after: this tree (the bounded hashing pool and the limits), in two scenarios:
  - distributed: every bogus sign-in from another client address (as the gateway states it, with the
    install's gateway secret), so no per-address limit applies and the pool alone bounds the work;
  - one address: every sign-in from one address, as one attacker behind the gateway; the per-address
    limits answer 429 once they are reached.

For `--seconds`, `--concurrency` tasks send sign-ins for unknown addresses with a wrong password (each
costs a full argon2 verification in every variant), back to back; meanwhile one task asks `/health`
every 50 ms and another samples the service's RSS every 100 ms; just before, 20 `/health` requests
with nothing else asked of the service give the machine's floor. Reported: sign-in answers per second
(by status), argon2 verifications per second (the 401 answers), sign-in latency p50/p99, `/health`
latency p50/p99/max, the service's RSS before the flood and at its peak. Then, with the flood over, the
time of one real sign-in (a registered member, the right password).

Prints one JSON document on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from queue_engine import machine_info, progress

ROOT = Path(__file__).resolve().parents[1]
BEFORE_REF = "9c5fcdb"
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def extract_source(ref: str, into: Path) -> Path:
    """`src/` of commit `ref`, extracted into `into`; its path."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), ref, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Service:
    """The members service in its own process, from the source tree `src`."""

    def __init__(self, src: Path, data_dir: Path) -> None:
        from scte.kit.auth import generate_key_pair
        from scte.kit.forwarding import ensure_gateway_secret, gateway_secret_path

        self.data_dir = data_dir
        data_dir.mkdir(parents=True)
        keys = data_dir / "keys"
        generate_key_pair(keys / "jwt-ed25519.pem", keys / "jwt-ed25519.pub.pem")
        secret_path = gateway_secret_path(data_dir)
        ensure_gateway_secret(secret_path)
        self.secret = secret_path.read_text()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PYTHONPATH": str(src),
            "SCTE_DATA_DIR": str(data_dir),
            "SCTE_TRANSPORT": "inprocess",
            "SCTE_MEMBERS_PORT": str(self.port),
            "SCTE_LOG_LEVEL": "warning",
        }
        self.log = (data_dir / "members.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from scte.services.members.service import main; main()"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"members did not start: {(data_dir / 'members.log').read_text()[-2000:]}")
            time.sleep(0.2)

    def rss_mb(self) -> float:
        return float(psutil.Process(self.process.pid).memory_info().rss) / 2**20

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


async def flood(service: Service, *, concurrency: int, seconds: float, distributed: bool) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    health: list[float] = []
    health_failures = 0
    rss: list[float] = []
    stop_at = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=service.url, timeout=120, limits=limits) as client:
        # one member who signs in for real once the flood is over
        email = f"real-{secrets.token_hex(4)}@example.com"
        created = await client.post("/members", json={"email": email, "password": PASSWORD, "display_name": "Real"})
        assert created.status_code == 201, created.text
        baseline = service.rss_mb()
        floor: list[float] = []  # /health with nothing else asked of the service: the machine's floor
        for _ in range(20):
            started = time.perf_counter()
            await client.get("/health")
            floor.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
        load = os.getloadavg()[0]

        async def attacker(n: int) -> None:
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                address = f"10.{n}.{i // 250 % 250}.{i % 250}" if distributed else "203.0.113.66"
                headers = {"X-Forwarded-For": address, "X-SCTE-Gateway-Secret": service.secret}
                body = {"email": f"nobody-{n}-{i}@example.com", "password": "not the password at all"}
                started = time.perf_counter()
                try:
                    r = await client.post("/sessions", json=body, headers=headers)
                    status = r.status_code
                except httpx.HTTPError:
                    status = 0
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

        async def prober() -> None:
            nonlocal health_failures
            async with httpx.AsyncClient(base_url=service.url, timeout=60) as own:
                while time.monotonic() < stop_at:
                    started = time.perf_counter()
                    try:
                        ok = (await own.get("/health")).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    health.append(time.perf_counter() - started)
                    health_failures += 0 if ok else 1
                    await asyncio.sleep(0.05)

        async def sampler() -> None:
            while time.monotonic() < stop_at + 1:
                rss.append(service.rss_mb())
                await asyncio.sleep(0.1)

        started = time.perf_counter()
        await asyncio.gather(*(attacker(n) for n in range(concurrency)), prober(), sampler())
        elapsed = time.perf_counter() - started
        await asyncio.sleep(2)  # the last hashes drain
        real_started = time.perf_counter()
        real = await client.post("/sessions", json={"email": email, "password": PASSWORD})
        real_ms = (time.perf_counter() - real_started) * 1000
    answers = sum(statuses.values())
    return {
        "seconds": round(elapsed, 1),
        "concurrency": concurrency,
        "answers": answers,
        "answers_per_s": round(answers / elapsed, 1),
        "by_status": {str(k): v for k, v in sorted(statuses.items())},
        "verifications_per_s": round(statuses.get(401, 0) / elapsed, 1),
        "sign_in_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "sign_in_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "load_average_1m": round(load, 1),
        "health_floor_p50_ms": round(percentile(floor, 50) * 1000, 1),
        "health_requests": len(health),
        "health_failures": health_failures,
        "health_p50_ms": round(percentile(health, 50) * 1000, 1),
        "health_p99_ms": round(percentile(health, 99) * 1000, 1),
        "health_max_ms": round(max(health) * 1000, 1) if health else None,
        "rss_before_mb": round(baseline, 1),
        "rss_peak_mb": round(max(rss), 1) if rss else None,
        "real_sign_in_status": real.status_code,
        "real_sign_in_ms": round(real_ms, 1),
    }


def run_variant(name: str, src: Path, work: Path, **options: Any) -> dict[str, Any]:
    progress(f"{name}: starting members from {src}")
    service = Service(src, work / name)
    try:
        result = asyncio.run(flood(service, **options))
    finally:
        service.stop()
    progress(f"{name}: {json.dumps(result)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-ref", default=BEFORE_REF, help="the commit of the 'before' variant")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    options = {"concurrency": args.concurrency, "seconds": args.seconds}
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        work = Path(tmp)
        before_src = extract_source(args.before_ref, work / "before-tree")
        load = os.getloadavg()
        results = {
            "machine": machine_info(work),
            "load_average_at_start": [round(x, 2) for x in load],
            "before_ref": args.before_ref,
            "after_ref": subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
            ).stdout.strip(),
            "before": run_variant("before", before_src, work, distributed=True, **options),
            "after_distributed": run_variant("after-distributed", ROOT / "src", work, distributed=True, **options),
            "after_one_address": run_variant("after-one-address", ROOT / "src", work, distributed=False, **options),
        }
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
