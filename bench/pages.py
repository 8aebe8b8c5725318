"""The website's server time per page: p50 and p99 at 1 and at 16 concurrent signed-in sessions.

    python bench/pages.py                       # starts its own `scte up` (seeded), JSON on stdout
    python bench/pages.py --url http://127.0.0.1:8000 --data ./var    # a platform already running (its data: staff)
    python bench/pages.py --quick               # fewer requests (a smoke run: figures are not results)

Each page is asked for by GET over keep-alive connections on loopback, as a signed-in browser would
(the session cookies of a member, of a company admin or of staff, made through the services' APIs
first); the time is from sending the request to the last byte of the page, which is the gateway's
rendering plus the service calls it makes. For each page: `--requests` requests one after another
(1 session), then 16 sessions, each its own connection and cookies, asking `--requests` times in all.
The goal of the issue is p99 <= 50 ms at idle (1 session) for every page.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from conditions import Conditions

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests.harness: `scte up` on free ports

PASSWORD = "bench pages orbit lantern 2026"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}

MEMBER_PAGES = [
    "/account",
    "/orders",
    "/courses",
    "/exams",
    "/exams/BPI/sit",  # the paper (the member has a paid BPI attempt; a GET spends nothing)
    "/transcript",
    "/gallery",
    "/search?q=program:BPI",
    "/inbox",
    "/invitations",
    "/profile",
    "/password",
]
PUBLIC_PAGES = ["/", "/sign-in", "/register"]
ADMIN_PAGES = ["/company", "/company/orders"]
STAFF_PAGES = ["/staff", "/staff/courses", "/staff/companies", "/staff/reports", "/staff/exams", "/staff/exams/BPI"]


async def _token(client: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    answer = await client.post("/api/members/sessions", json={"email": email, "password": password})
    answer.raise_for_status()
    return dict(answer.json())


def _cookies(tokens: dict[str, Any]) -> dict[str, str]:
    return {"scte_session": tokens["access_token"], "scte_refresh": tokens.get("refresh_token", "")}


def create_staff(data_dir: Path) -> tuple[str, str]:
    """A staff account made with `scte admin create-staff`: (email, the password it shows once)."""
    email = f"bench-staff-{uuid.uuid4().hex[:8]}@bench.example"
    done = subprocess.run(
        [sys.executable, "-m", "scte.cli", "admin", "create-staff", email, "--data", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return email, done.stdout.rsplit(": ", 1)[1].strip()


async def people(url: str, data_dir: Path) -> dict[str, dict[str, str]]:
    """Cookies of a member (dues paid), a company admin and staff, made through the APIs."""
    staff_email, staff_password = create_staff(data_dir)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        staff = await _token(client, staff_email, staff_password)
        made = {}
        for who in ("member", "admin"):
            email = f"bench-{who}-{uuid.uuid4().hex[:8]}@bench.example"
            body = {"email": email, "password": PASSWORD, "display_name": f"Bench {who}", "listed_in_directory": True}
            (await client.post("/api/members/members", json=body)).raise_for_status()
            tokens = await _token(client, email, PASSWORD)
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            lines = [{"kind": "dues"}, {"kind": "exam_fee", "reference": "BPI"}]
            order = await client.post("/api/commerce/orders", json={"lines": lines}, headers=auth)
            order.raise_for_status()
            paid = await client.post(
                f"/api/commerce/orders/{order.json()['order_id']}/pay", json={"card": CARD}, headers=auth
            )
            paid.raise_for_status()
            made[who] = (email, tokens["member_id"])
        staff_auth = {"Authorization": f"Bearer {staff['access_token']}"}
        company = await client.post(
            "/api/companies/companies",
            json={"name": f"Bench Co {uuid.uuid4().hex[:6]}", "admin_member_id": made["admin"][1]},
            headers=staff_auth,
        )
        company.raise_for_status()
        deadline = time.monotonic() + 60
        while True:  # the company_admin role reaches members by a message
            admin = await _token(client, made["admin"][0], PASSWORD)
            if "company_admin" in admin["roles"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        member = await _token(client, made["member"][0], PASSWORD)
    return {"member": _cookies(member), "admin": _cookies(admin), "staff": _cookies(staff), "visitor": {}}


async def a_notice(url: str, cookies: dict[str, str]) -> str:
    """The page of one notice sent to the member (their welcome), once the delivery log has it."""
    tokens = {"Authorization": f"Bearer {cookies['scte_session']}"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        deadline = time.monotonic() + 120
        while True:
            found = await client.get("/api/notifications/notifications/deliveries", headers=tokens)
            found.raise_for_status()
            if found.json():
                return f"/inbox/{found.json()[0]['notification_id']}"
            if time.monotonic() > deadline:
                raise RuntimeError("no notice reached the member's delivery log within 120 s")
            await asyncio.sleep(0.5)


async def _one(client: httpx.AsyncClient, path: str) -> float:
    start = time.perf_counter()
    response = await client.get(path)
    await response.aread()
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {response.status_code}")
    return elapsed


async def measure(url: str, path: str, cookies: dict[str, str], requests: int, sessions: int) -> list[float]:
    clients = [httpx.AsyncClient(base_url=url, cookies=cookies, timeout=60) for _ in range(sessions)]
    try:
        for client in clients:  # warm: a connection per session, the templates compiled
            await _one(client, path)
        per_session = max(1, requests // sessions)

        async def run(client: httpx.AsyncClient) -> list[float]:
            return [await _one(client, path) for _ in range(per_session)]

        results = await asyncio.gather(*(run(c) for c in clients))
        return [t for r in results for t in r]
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def bench(url: str, data_dir: Path, requests: int, conditions: Conditions) -> list[dict[str, Any]]:
    cookies = await people(url, data_dir)
    notice = await a_notice(url, cookies["member"])
    plan = (
        [(p, "visitor") for p in PUBLIC_PAGES]
        + [(p, "member") for p in [*MEMBER_PAGES, notice]]
        + [(p, "admin") for p in ADMIN_PAGES]
        + [(p, "staff") for p in STAFF_PAGES]
    )
    rows = []
    for path, who in plan:
        row: dict[str, Any] = {"page": path, "as": who}
        for sessions in (1, 16):
            with conditions.side(f"{path} x{sessions}"):
                times = await measure(url, path, cookies[who], requests, sessions)
            row[f"p50_ms_{sessions}"] = round(statistics.median(times) * 1000, 1)
            row[f"p99_ms_{sessions}"] = round(percentile(times, 0.99) * 1000, 1)
            row[f"n_{sessions}"] = len(times)
        print(
            f"{path:28} {who:8} 1: p50 {row['p50_ms_1']:6} p99 {row['p99_ms_1']:6} | "
            f"16: p50 {row['p50_ms_16']:6} p99 {row['p99_ms_16']:6} ms",
            file=sys.stderr,
        )
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running platform's gateway (else this starts its own scte up)")
    parser.add_argument("--data", type=Path, default=Path("./var"), help="that platform's data directory (staff)")
    parser.add_argument("--requests", type=int, default=300, help="requests per page and concurrency level")
    parser.add_argument("--quick", action="store_true", help="40 requests per page: a smoke run")
    args = parser.parse_args()
    requests = 40 if args.quick else args.requests
    conditions = Conditions()
    report: dict[str, Any] = {"benchmark": "pages", "requests": requests}
    if args.url:
        report["pages"] = asyncio.run(bench(args.url.rstrip("/"), args.data, requests, conditions))
    else:
        from tests.harness.platform import running_platform

        class _Factory:  # the harness wants pytest's temporary-directory factory; a plain one will do
            def __init__(self) -> None:
                self.root = Path(tempfile.mkdtemp(prefix="bench-pages-"))

            def mktemp(self, name: str) -> Path:
                path = self.root / name
                path.mkdir()
                return path

        with running_platform(_Factory(), "bench-pages") as platform:  # type: ignore[arg-type]
            report["pages"] = asyncio.run(bench(platform.url, platform.data_dir, requests, conditions))
    report["conditions"] = conditions.report()
    conditions.say()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
