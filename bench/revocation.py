"""The cost of checking every request's token against the revoked sessions (scte.kit.revocation).

    python bench/revocation.py [--requests 1000] [--rounds 3] [--revoked 10000]   # JSON on stdout

One companies service (its runtime on a SQLite file in a temporary directory, the in-process broker),
called in-process through httpx's ASGI transport (no sockets: the HTTP stack would only add the same
constant to both sides). `GET /companies` with a valid token, one request after another, in three
modes interleaved round by round so that a change of load hits all three alike:

- `no check`: the app's revocation check removed (`app.state.revocations = None`): the verification of
  the token's signature and claims only, as before revocation existed;
- `check, empty table`: the check as shipped, no revocation stored;
- `check, N revoked`: the table holding N revoked sessions and N/10 member epochs of other members,
  so the lookup goes through a populated primary-key index.

Reported per mode: the median and p99 of the per-request wall time over all rounds, the process's
own CPU time per request (what the check costs even on a busy machine, where the wall time mostly
measures waiting for a core), and both differences to `no check`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from conditions import Conditions
from scte.kit.auth import TokenIssuer, generate_key_pair
from scte.kit.revocation import record_revocation
from scte.kit.settings import Settings
from scte.services.companies.service import build_runtime

MODES = ("no check", "check, empty table", "check, N revoked")


async def _fill(runtime: Any, revoked: int) -> None:
    now = datetime.now(UTC)
    async with runtime.context.sessionmaker() as session, session.begin():
        for i in range(revoked):
            await record_revocation(session, f"member-{i % (revoked // 10 or 1)}", f"session-{i}", 0, now)
        for i in range(revoked // 10):
            await record_revocation(session, f"member-{i}", None, 3, now)


async def _requests(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> list[float]:
    """The wall time of each request."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get("/companies", headers=headers)
        times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code} {response.text}")
    return times


async def run(requests: int, rounds: int, revoked: int, conditions: Conditions) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), transport="inprocess", shutdown_grace_seconds=2.0)
        generate_key_pair(settings.private_key_path, settings.public_key_path)
        tokens = TokenIssuer.from_file(settings.private_key_path)

        def headers() -> dict[str, str]:
            # a fresh token per side: a long run on a busy machine outlives one (15 minutes)
            return {"Authorization": f"Bearer {tokens.issue('bench-member', session_id='bench-session')}"}

        runtime = build_runtime(settings)
        await runtime.start(consume=False)
        try:
            check = runtime.app.state.revocations
            transport = httpx.ASGITransport(app=runtime.app)
            samples: dict[str, list[float]] = {mode: [] for mode in MODES}
            cpu: dict[str, float] = dict.fromkeys(MODES, 0.0)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await _requests(client, headers(), 200)  # warm-up
                filled = False
                for _round in range(rounds):
                    for mode in MODES:
                        if mode == "check, N revoked" and not filled:
                            await _fill(runtime, revoked)
                            filled = True
                        if mode == "check, empty table" and filled:
                            continue  # the table is filled for good after the first round
                        runtime.app.state.revocations = None if mode == "no check" else check
                        with conditions.side(f"{mode} round {_round + 1}"):
                            started = time.process_time()
                            samples[mode] += await _requests(client, headers(), requests)
                            cpu[mode] += time.process_time() - started
                runtime.app.state.revocations = check
        finally:
            await runtime.stop()
    base = statistics.median(samples["no check"])
    base_cpu = cpu["no check"] / len(samples["no check"])
    out: dict[str, Any] = {}
    for mode, times in samples.items():
        ordered = sorted(times)
        median = statistics.median(ordered)
        out[mode] = {
            "requests": len(ordered),
            "median_us": round(median * 1e6, 1),
            "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 1),
            "median_over_no_check_us": round((median - base) * 1e6, 1),
            # the process's own CPU per request: what the check costs, whatever else the machine runs
            "cpu_per_request_us": round(cpu[mode] / len(ordered) * 1e6, 1),
            "cpu_over_no_check_us": round((cpu[mode] / len(ordered) - base_cpu) * 1e6, 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per mode and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--revoked", type=int, default=10_000, help="revoked sessions stored for the third mode")
    args = parser.parse_args()
    conditions = Conditions()
    results = asyncio.run(run(args.requests, args.rounds, args.revoked, conditions))
    conditions.say()
    report = {
        "benchmark": "revocation",
        "command": " ".join(sys.argv),
        "revoked_sessions": args.revoked,
        "results": results,
        "conditions": conditions.report(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
