"""The seed's own claim measured: "exam passed" answered by the async flow vs a synchronous REST chain.

    python bench/sync_vs_async.py [--quick] [--levels 1,4,16,64] [--sides async,sync,sync_fanout] [--runs 3]

Prints one JSON document on stdout (machine and conditions, then per side a list with one entry per run),
progress on stderr. `--runs R` repeats the sides R times interleaved (async, sync, sync_fanout, async, ...),
each run on fresh directories, so that a machine getting busier or quieter weighs on every side alike.
Both sides store through the same SQLite driver, the inline one of the services (`sqlite+scte`). Each
side's load average before and after and the CPU other processes used meanwhile are recorded
(bench/conditions.py); the run is called quiet only if every side ran on a quiet machine. See
docs/benchmarks.md for the method and the figures.

Sides:
- async: the real platform, `scte up --no-seed` on a temporary data directory and free ports. The
  request is `POST /exams/{id}/attempts` on the learning service (staff records a passing score); it
  is answered once learning has committed the attempt and its outbox row. Certification, members,
  notifications, search, companies, reports and activity do their part later, through the broker.
- sync: the same request answered by a stand-in learning service that, after storing the attempt,
  calls certification, members, notifications (real SMTP to the platform's mail server), search,
  companies and reports over HTTP one after the other and answers when the last has answered
  (`bench/sync_chain/`).
- sync_fanout: the same chain, but once certification and members have answered (the others need
  their result) notifications, search, companies and reports are called concurrently.

For each side: rising concurrency (closed loop: `c` clients, each sends its next request when the
previous one is answered), latency p50/p90/p99 of the answer and the time until the member's
"Congratulations" mail is in the mailbox; then the same load while notifications is stopped
(SIGTERM) and while it hangs (SIGSTOP), each request bounded by `--timeout` seconds; then whether
the mails of those requests arrive once notifications is back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
SRC = BENCH.parent / "src"
sys.path.insert(0, str(SRC))

from scte.kit.auth import TokenIssuer, generate_key_pair  # noqa: E402
from scte.platform import SERVICES  # noqa: E402
from scte.services.learning.seed import EXAMS  # noqa: E402
from scte.web.mail import mail_db_path  # noqa: E402

sys.path.insert(0, str(BENCH))
from conditions import Conditions  # noqa: E402

PASSWORD = "a long enough passphrase 42"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
PROGRAMS = [code for code, _title, _questions in EXAMS]
QUESTIONS = {code: questions for code, _title, questions in EXAMS}
CHAIN_ROLES = ("certification", "members", "notifications", "search", "companies", "reports")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    import psutil  # type: ignore[import-untyped]

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_health(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        if http_ok(url):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not healthy within {timeout} s")


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p90_ms": ms(percentile(values, 90)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values) if values else None),
    }


# --- the mailbox ------------------------------------------------------------------------------------


def congratulations(mail_dir: Path) -> dict[tuple[str, str], float]:
    """(recipient, program) -> when the "Congratulations on your <program> certification" mail arrived."""
    path = mail_db_path(mail_dir)
    if not path.exists():
        return {}
    with sqlite3.connect(path, timeout=30) as conn:
        rows = conn.execute(
            "SELECT received_at, rcpt_tos, subject FROM messages WHERE subject LIKE 'Congratulations on your %'"
        ).fetchall()
    found: dict[tuple[str, str], float] = {}
    for received_at, rcpts, subject in rows:
        program = subject.split()[3]
        for rcpt in json.loads(rcpts):
            found.setdefault((rcpt.lower(), program), datetime.fromisoformat(received_at).timestamp())
    return found


def mail_count(mail_dir: Path) -> int:
    path = mail_db_path(mail_dir)
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=30) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


# --- load ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    member_id: str
    email: str
    program: str


@dataclass
class Result:
    pair: Pair
    started: float  # wall clock (to compare with the mailbox's received_at)
    latency: float
    ok: bool
    outcome: str  # "201", "HTTP 502 notifications", "timeout", ...


@dataclass
class Side:
    """One way of answering the request: where to send it, and how to stop notifications."""

    name: str
    url: str  # the learning endpoint's base
    token: Callable[[], str]
    """A fresh staff token (access tokens live at most 15 minutes)."""
    mail_dir: Path
    pairs: list[Pair]
    stop_notifications: Callable[[], None]
    start_notifications: Callable[[], None]
    hang_notifications: Callable[[], None]
    resume_notifications: Callable[[], None]
    backlog: Callable[[], int] = lambda: 0
    used: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def take(self, n: int) -> list[Pair]:
        if self.used + n > len(self.pairs):
            raise RuntimeError(f"{self.name}: only {len(self.pairs) - self.used} prepared exam passes left, {n} needed")
        taken = self.pairs[self.used : self.used + n]
        self.used += n
        return taken


async def run_load(side: Side, pairs: list[Pair], concurrency: int, time_cap: float, timeout: float) -> list[Result]:
    """`concurrency` closed-loop clients send one request each until `pairs` are used or time is up."""
    queue: asyncio.Queue[Pair] = asyncio.Queue()
    for pair in pairs:
        queue.put_nowait(pair)
    results: list[Result] = []
    deadline = time.monotonic() + time_cap
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {side.token()}"}
    async with httpx.AsyncClient(base_url=side.url, headers=headers, limits=limits, timeout=timeout + 5) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                try:
                    pair = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started, t0 = time.time(), time.perf_counter()
                try:
                    async with asyncio.timeout(timeout):
                        r = await client.post(
                            f"/exams/{pair.program}/attempts",
                            json={"member_id": pair.member_id, "correct": QUESTIONS[pair.program]},
                        )
                    ok = r.status_code == 201 and bool(r.json().get("passed"))
                    outcome = str(r.status_code)
                    if r.status_code >= 400:
                        try:
                            body = r.json()
                            outcome += f" {body.get('step') or body.get('error') or ''}".rstrip()
                        except ValueError:
                            pass
                except TimeoutError:
                    ok, outcome = False, "timeout"
                except httpx.HTTPError as exc:
                    ok, outcome = False, type(exc).__name__
                results.append(Result(pair, started, time.perf_counter() - t0, ok, outcome))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    side.extra["last_elapsed"] = elapsed
    return results


async def wait_mails(side: Side, results: list[Result], timeout: float) -> tuple[dict[tuple[str, str], float], float]:
    """Wait until every answered request's congratulation mail is in the mailbox (and the broker's
    queues are empty); the mails found and the seconds waited."""
    t0 = time.monotonic()
    wanted = {(r.pair.email, r.pair.program) for r in results if r.ok}
    while True:
        found = congratulations(side.mail_dir)
        if wanted <= found.keys() and await asyncio.to_thread(side.backlog) == 0:
            break
        if time.monotonic() - t0 > timeout:
            break
        await asyncio.sleep(0.25)
    return found, time.monotonic() - t0


def describe(results: list[Result], mails: dict[tuple[str, str], float], elapsed: float) -> dict[str, Any]:
    ok = [r for r in results if r.ok]
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    to_mail = [
        mails[(r.pair.email, r.pair.program)] - r.started for r in results if (r.pair.email, r.pair.program) in mails
    ]
    return {
        "requests": len(results),
        "succeeded": len(ok),
        "success_rate": round(len(ok) / len(results), 4) if results else None,
        "outcomes": outcomes,
        "throughput_per_s": round(len(ok) / elapsed, 1) if elapsed > 0 else None,
        "answer_ok": summary([r.latency for r in ok]),
        "answer_all": summary([r.latency for r in results]),
        "mail_received": len(to_mail),
        "time_to_mail": summary([max(0.0, t) for t in to_mail]),
    }


async def measure(side: Side, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"levels": [], "faults": []}
    log(f"{side.name}: warm-up")
    warm = await run_load(side, side.take(args.warmup), 1, 60, args.timeout)
    await wait_mails(side, warm, args.drain_timeout)
    for c in args.levels:
        n = max(args.min_requests, args.per_client * c)
        log(f"{side.name}: {n} requests at concurrency {c}")
        load = os.getloadavg()[0]
        results = await run_load(side, side.take(n), c, args.level_seconds, args.timeout)
        elapsed = side.extra["last_elapsed"]
        mails, drained = await wait_mails(side, results, args.drain_timeout)
        entry = {"concurrency": c, "load_average_1m_before": round(load, 2), "elapsed_s": round(elapsed, 2)}
        entry.update(describe(results, mails, elapsed))
        entry["drain_after_s"] = round(drained, 2)
        # the whole flow (answer, then every downstream effect) per second, not just the answers
        entry["flows_done_per_s"] = round(entry["succeeded"] / (elapsed + drained), 1)
        out["levels"].append(entry)
        log(
            f"{side.name}: c={c} ok {entry['succeeded']}/{entry['requests']} answer p50 {entry['answer_ok']['p50_ms']} "
            f"p99 {entry['answer_ok']['p99_ms']} ms; mail p50 {entry['time_to_mail']['p50_ms']} ms"
        )
    for fault, stop, resume in (
        ("stopped", side.stop_notifications, side.start_notifications),
        ("hung", side.hang_notifications, side.resume_notifications),
    ):
        n = args.fault_requests
        log(f"{side.name}: notifications {fault}; {n} requests at concurrency {args.fault_concurrency}")
        await asyncio.to_thread(stop)
        down_since = time.monotonic()
        try:
            results = await run_load(side, side.take(n), args.fault_concurrency, args.level_seconds, args.timeout)
            elapsed = side.extra["last_elapsed"]
            # keep it down a while, so that "no mail while it is down" means something
            await asyncio.sleep(max(0.0, args.fault_hold - (time.monotonic() - down_since)))
            mails_during = congratulations(side.mail_dir)
            down_for = time.monotonic() - down_since
        finally:
            await asyncio.to_thread(resume)
        entry = {
            "notifications": fault,
            "concurrency": args.fault_concurrency,
            "elapsed_s": round(elapsed, 2),
            "down_for_s": round(down_for, 1),
        }
        entry.update(describe(results, mails_during, elapsed))
        entry["mail_received_while_down"] = entry.pop("mail_received")
        entry.pop("time_to_mail")
        mails, waited = await wait_mails(side, results, args.drain_timeout)
        ok = [r for r in results if r.ok]
        entry["mail_received_after_recovery"] = sum((r.pair.email, r.pair.program) in mails for r in ok)
        entry["recovery_wait_s"] = round(waited, 2)
        out["faults"].append(entry)
        log(
            f"{side.name}: notifications {fault}: ok {entry['succeeded']}/{entry['requests']} {entry['outcomes']}; "
            f"mails after recovery {entry['mail_received_after_recovery']}/{len(ok)}"
        )
    return out


# --- the async side: the real platform -----------------------------------------------------------


class Platform:
    def __init__(self, root: Path) -> None:
        self.data = root / "platform"
        names = ["gateway", "broker", "smtp", *SERVICES]
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.process: subprocess.Popen[bytes] | None = None
        self.notifications: subprocess.Popen[bytes] | None = None  # once the bench restarted it
        self.log_path = root / "scte-up.log"

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)}
        env.update({f"SCTE_{name.upper()}_PORT": str(port) for name, port in self.ports.items()})
        self.data.mkdir(parents=True)
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "scte.cli", "up", "--data", str(self.data), "--no-seed"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 300
        while "Ctrl-C stops everything" not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"scte up did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        wait_health(self.gateway + "/health", 30)

    def registry(self) -> dict[str, Any]:
        return dict(json.loads((self.data / "run" / "processes.json").read_text(encoding="utf-8")))

    def notifications_pid(self) -> int:
        if self.notifications is not None:
            return self.notifications.pid
        return int(self.registry()["children"]["notifications"]["pid"])

    def stop_notifications(self) -> None:
        pid = self.notifications_pid()
        os.kill(pid, signal.SIGTERM)
        if self.notifications is not None:
            self.notifications.wait(30)
            self.notifications = None
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise RuntimeError(f"notifications (pid {pid}) did not stop")

    def start_notifications(self) -> None:
        registry = self.registry()
        child = registry["children"]["notifications"]
        env = {**os.environ, **registry["env"]}
        with (self.data / "logs" / "notifications.log").open("ab") as out:
            self.notifications = subprocess.Popen(child["argv"], env=env, stdout=out, stderr=subprocess.STDOUT)
        wait_health(child["health"], 60, self.notifications)

    def hang_notifications(self) -> None:
        os.kill(self.notifications_pid(), signal.SIGSTOP)

    def resume_notifications(self) -> None:
        os.kill(self.notifications_pid(), signal.SIGCONT)

    def backlog(self) -> int:
        """Messages waiting or in flight in every queue of the broker."""
        import boto3  # type: ignore[import-untyped]

        sqs = boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{self.ports['broker']}",
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        total = 0
        for url in sqs.list_queues().get("QueueUrls", []):
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            total += sum(int(v) for v in attrs.values())
        return total

    def stop(self) -> None:
        if self.notifications is not None:
            stop_process(self.notifications)
        if self.process is not None:
            with contextlib.suppress(OSError, KeyError, ValueError):
                os.kill(self.notifications_pid(), signal.SIGCONT)
            stop_process(self.process, signal.SIGINT, 120)


async def gather_limited(jobs: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(run(j) for j in jobs)))


def check(r: httpx.Response, expected: int) -> Any:
    if r.status_code != expected:
        raise RuntimeError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:300]}")
    return r.json()


async def prepare_platform(p: Platform, members: int, companies: int) -> tuple[Callable[[], str], list[Pair]]:
    issuer = TokenIssuer.from_file(p.data / "keys" / "jwt-ed25519.pem")

    def staff() -> str:
        # a fresh token per use: access tokens live 15 minutes, a preparation or a run may take longer
        return issuer.issue("bench-staff", ("member", "staff"))

    async with httpx.AsyncClient(base_url=p.gateway, timeout=60) as client:

        async def register(name: str) -> tuple[str, str, str]:
            email = f"{uuid.uuid4().hex[:12]}@bench.example"
            created = check(
                await client.post(
                    "/api/members/members", json={"email": email, "password": PASSWORD, "display_name": name}
                ),
                201,
            )
            member_id = created["id"]
            token = issuer.issue(member_id, ("member",))
            auth = {"Authorization": f"Bearer {token}"}
            check(
                await client.patch(
                    f"/api/members/members/{member_id}",
                    json={"listed_in_directory": True, "city": "Exton", "country": "US"},
                    headers=auth,
                ),
                200,
            )
            return member_id, email, token

        admins = await gather_limited([partial(register, f"Admin {i}") for i in range(companies)], 8)
        company_ids = []
        for i, (admin_id, _email, _token) in enumerate(admins):
            company_id = f"bench-{uuid.uuid4().hex[:8]}"
            check(
                await client.post(
                    "/api/companies/companies",
                    json={"company_id": company_id, "name": f"Bench Cable {i}", "admin_member_id": admin_id},
                    headers={"Authorization": f"Bearer {staff()}"},
                ),
                201,
            )
            company_ids.append(company_id)

        async def member(i: int) -> tuple[str, str]:
            member_id, email, token = await register(f"Bench Member {i}")
            auth = {"Authorization": f"Bearer {token}"}
            # joining a company takes consent: invited (here by staff), accepted by the member
            invitation = check(
                await client.post(
                    f"/api/companies/companies/{company_ids[i % companies]}/invitations",
                    json={"member_id": member_id},
                    headers={"Authorization": f"Bearer {staff()}"},
                ),
                201,
            )
            check(
                await client.post(
                    f"/api/companies/members/{member_id}/invitations/{invitation['invitation_id']}/accept",
                    headers=auth,
                ),
                200,
            )
            order = check(
                await client.post(
                    "/api/commerce/orders",
                    json={"lines": [{"kind": "exam_fee", "reference": code} for code in PROGRAMS]},
                    headers=auth,
                ),
                201,
            )
            check(
                await client.post(f"/api/commerce/orders/{order['order_id']}/pay", json={"card": CARD}, headers=auth),
                200,
            )
            return member_id, email

        people = await gather_limited([partial(member, i) for i in range(members)], 8)
        log(f"async: {members} members registered and paid; waiting for learning to know the fees")
        deadline = time.monotonic() + 300
        waiting = {m for m, _ in people}
        while waiting:
            if time.monotonic() > deadline:
                raise RuntimeError(f"exam fees never reached learning for {len(waiting)} members")
            for member_id in list(waiting):
                r = await client.get(
                    f"/api/learning/members/{member_id}/transcript", headers={"Authorization": f"Bearer {staff()}"}
                )
                available = check(r, 200)["exam_attempts_available"]
                if all(available.get(code, 0) >= 1 for code in PROGRAMS):
                    waiting.discard(member_id)
            await asyncio.sleep(0.5)
    # member-major order: consecutive requests are for different members
    pairs = [Pair(m, e, code) for code in PROGRAMS for m, e in people]
    return staff, pairs


async def wait_quiet(backlog: Callable[[], int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:
        quiet = quiet + 1 if await asyncio.to_thread(backlog) == 0 else 0
        await asyncio.sleep(0.5)


async def run_async(root: Path, args: argparse.Namespace, members: int) -> dict[str, Any]:
    p = Platform(root)
    log("async: starting scte up (no seed)")
    t0 = time.monotonic()
    try:
        await asyncio.to_thread(p.start)
        log(f"async: up in {time.monotonic() - t0:.1f} s; preparing {members} members")
        staff, pairs = await prepare_platform(p, members, args.companies)
        await wait_quiet(p.backlog, args.drain_timeout)
        learning = f"http://127.0.0.1:{p.ports['learning']}"
        side = Side(
            "async",
            p.gateway + "/api/learning" if args.via_gateway else learning,
            staff,
            p.data,
            pairs,
            p.stop_notifications,
            p.start_notifications,
            p.hang_notifications,
            p.resume_notifications,
            p.backlog,
        )
        result = await measure(side, args)
        result["mails_total"] = mail_count(p.data)
        result["endpoint"] = "gateway" if args.via_gateway else "learning service port (no gateway hop)"
        return result
    finally:
        log("async: stopping scte up")
        await asyncio.to_thread(p.stop)


# --- the sync side: the stand-in chain -------------------------------------------------------------


class Chain:
    def __init__(self, root: Path, mode: str, timeout: float) -> None:
        self.root = root / f"sync-{mode}"
        self.mode = mode
        self.timeout = timeout
        self.ports = dict(zip(("smtp", "learning", *CHAIN_ROLES), free_ports(2 + len(CHAIN_ROLES)), strict=True))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.argv: dict[str, list[str]] = {}
        self.private_key = self.root / "keys" / "private.pem"
        self.public_key = self.root / "keys" / "public.pem"
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(BENCH), str(SRC), os.environ.get("PYTHONPATH")) if p),
        }

    def url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.ports[role]}"

    def spawn(self, role: str) -> None:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{role}.log").open("ab") as out:
            self.processes[role] = subprocess.Popen(self.argv[role], env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.root.mkdir(parents=True)
        generate_key_pair(self.private_key, self.public_key)
        py = sys.executable
        self.argv["mail"] = [py, "-m", "scte.web.mail", str(self.root), str(self.ports["smtp"])]
        common = ["--data", str(self.root), "--public-key", str(self.public_key), "--timeout", str(self.timeout)]
        for role in CHAIN_ROLES:
            self.argv[role] = [
                py, "-m", "sync_chain", role, "--port", str(self.ports[role]),
                "--smtp-port", str(self.ports["smtp"]), *common,
            ]  # fmt: skip
        downstream = ",".join(f"{role}={self.url(role)}" for role in CHAIN_ROLES)
        self.argv["learning"] = [
            py, "-m", "sync_chain", "learning", "--port", str(self.ports["learning"]),
            "--downstream", downstream, "--mode", self.mode, *common,
        ]  # fmt: skip
        self.spawn("mail")
        deadline = time.monotonic() + 30
        while not mail_db_path(self.root).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the mail server did not start")
            time.sleep(0.1)
        for role in ("learning", *CHAIN_ROLES):
            self.spawn(role)
        for role in ("learning", *CHAIN_ROLES):
            try:  # start-up is not measured; on a loaded machine eight processes importing FastAPI take a while
                wait_health(self.url(role) + "/health", 180, self.processes[role])
            except RuntimeError as exc:
                log_text = (self.root / "logs" / f"{role}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{role}: {exc}\n{log_text}") from exc

    def stop_notifications(self) -> None:
        stop_process(self.processes["notifications"])

    def start_notifications(self) -> None:
        self.spawn("notifications")
        wait_health(self.url("notifications") + "/health", 60, self.processes["notifications"])

    def hang_notifications(self) -> None:
        self.processes["notifications"].send_signal(signal.SIGSTOP)

    def resume_notifications(self) -> None:
        self.processes["notifications"].send_signal(signal.SIGCONT)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                stop_process(process)


async def prepare_chain(chain: Chain, members: int, companies: int) -> tuple[Callable[[], str], list[Pair]]:
    issuer = TokenIssuer.from_file(chain.private_key)

    def staff() -> str:
        return issuer.issue("bench-staff", ("member", "staff"))

    auth = {"Authorization": f"Bearer {staff()}"}
    async with httpx.AsyncClient(timeout=60, headers=auth) as client:
        for code in PROGRAMS:
            check(
                await client.put(f"{chain.url('learning')}/prep/exams/{code}", json={"questions": QUESTIONS[code]}), 200
            )
        company_ids = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(companies)]
        people: list[tuple[str, str, dict[str, Any]]] = []
        for i, company_id in enumerate(company_ids):
            email = f"{uuid.uuid4().hex[:12]}@bench.example"
            body = {"email": email, "display_name": f"Admin {i}", "company_id": company_id, "company_admin": True}
            people.append((uuid.uuid4().hex, email, body))
        members_only = []
        for i in range(members):
            member_id, email = uuid.uuid4().hex, f"{uuid.uuid4().hex[:12]}@bench.example"
            body = {
                "email": email,
                "display_name": f"Bench Member {i}",
                "company_id": company_ids[i % companies],
                "city": "Exton",
                "country": "US",
                "exam_fees": PROGRAMS,
            }
            people.append((member_id, email, body))
            members_only.append((member_id, email))
        jobs: list[Callable[[], Awaitable[Any]]] = [
            partial(client.put, f"{chain.url(role)}/prep/members/{m}", json=body)
            for m, _email, body in people
            for role in ("learning", *CHAIN_ROLES)
        ]
        for r in await gather_limited(jobs, 8):
            check(r, 200)
    pairs = [Pair(m, e, code) for code in PROGRAMS for m, e in members_only]
    return staff, pairs


async def run_sync(root: Path, args: argparse.Namespace, members: int, mode: str) -> dict[str, Any]:
    chain = Chain(root, mode, args.timeout)
    name = "sync" if mode == "serial" else "sync_fanout"
    log(f"{name}: starting the stand-in chain")
    try:
        await asyncio.to_thread(chain.start)
        staff, pairs = await prepare_chain(chain, members, args.companies)
        side = Side(
            name,
            chain.url("learning"),
            staff,
            chain.root,
            pairs,
            chain.stop_notifications,
            chain.start_notifications,
            chain.hang_notifications,
            chain.resume_notifications,
        )
        result = await measure(side, args)
        result["mails_total"] = mail_count(chain.root)
        result["endpoint"] = "stand-in learning service port"
        return result
    finally:
        await asyncio.to_thread(chain.stop)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a short run, to check that it works")
    parser.add_argument("--sides", default="async,sync,sync_fanout")
    parser.add_argument("--levels", default=None, help="concurrency levels (default 1,4,16,64)")
    parser.add_argument("--per-client", type=int, default=None, help="requests per client at each level")
    parser.add_argument("--min-requests", type=int, default=None, help="at least this many requests per level")
    parser.add_argument("--level-seconds", type=float, default=None, help="stop sending after this long per level")
    parser.add_argument("--fault-requests", type=int, default=None)
    parser.add_argument("--fault-concurrency", type=int, default=4)
    parser.add_argument("--fault-hold", type=float, default=None, help="keep notifications down at least this long")
    parser.add_argument("--timeout", type=float, default=5.0, help="per request, seconds (client and each chain call)")
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="wait for the mails after a level")
    parser.add_argument("--companies", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--via-gateway", action="store_true", help="async side: send through the gateway")
    parser.add_argument("--runs", type=int, default=1, help="repeat the sides this many times, interleaved")
    args = parser.parse_args()
    conditions = Conditions()
    args.levels = [int(x) for x in (args.levels or "1,4,16,64").split(",")]
    args.per_client = args.per_client or (1 if args.quick else 10)
    args.min_requests = args.min_requests or (8 if args.quick else 200)
    args.level_seconds = args.level_seconds or (60.0 if args.quick else 180.0)
    args.fault_requests = args.fault_requests or (12 if args.quick else 100)
    args.fault_hold = args.fault_hold if args.fault_hold is not None else (5.0 if args.quick else 15.0)
    needed = (
        args.warmup + sum(max(args.min_requests, args.per_client * c) for c in args.levels) + 2 * args.fault_requests
    )
    members = -(-needed // len(PROGRAMS))
    report: dict[str, Any] = {
        "benchmark": "sync_vs_async",
        "quick": args.quick,
        "machine": machine(),
        "config": {
            "levels": args.levels,
            "requests_per_level": {c: max(args.min_requests, args.per_client * c) for c in args.levels},
            "level_seconds_cap": args.level_seconds,
            "fault_requests": args.fault_requests,
            "fault_concurrency": args.fault_concurrency,
            "fault_hold_s": args.fault_hold,
            "timeout_s": args.timeout,
            "members": members,
            "companies": args.companies,
            "programs": len(PROGRAMS),
        },
        "command": " ".join(sys.argv),
        "runs": args.runs,
        "sides": {},
    }
    sides = args.sides.split(",")
    for name in sides:
        if name not in ("async", "sync", "sync_fanout"):
            raise SystemExit(f"unknown side {name}")
        report["sides"][name] = []
    for run in range(1, args.runs + 1):
        for name in sides:
            with tempfile.TemporaryDirectory(prefix=f"scte-sync-vs-async-{run}-") as tmp:
                root = Path(tmp)
                started = time.monotonic()
                log(f"run {run}: {name}")
                with conditions.side(f"{name}#{run}") as load:
                    if name == "async":
                        result = await run_async(root, args, members)
                    else:
                        result = await run_sync(root, args, members, "serial" if name == "sync" else "fanout")
                result["run"] = run
                result["wall_s"] = round(time.monotonic() - started, 1)
                result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
                result["conditions"] = load
                report["sides"][name].append(result)
    report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["conditions"] = conditions.report()
    print(json.dumps(report, indent=2))
    conditions.say()


if __name__ == "__main__":
    asyncio.run(main())
