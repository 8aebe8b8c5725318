"""Fuzzing gate: schemathesis over every service's OpenAPI document, against the real services.

    .venv/bin/python tests/fuzz/fuzz_apis.py [--max-examples N] [--service NAME ...] [--seed N]

Each service runs as it does under `scte up` (its runtime: API, consumer, outbox relay, a real SQLite
database in a fresh data directory, the in-process broker) and is served by uvicorn on a free loopback
port; schemathesis (the pinned CLI, `st run`) reads `/openapi.json` there and sends generated requests,
valid and invalid (phases examples, coverage, fuzzing), with a staff token, then checks every answer:
no 5xx, the status code, content type, headers and body as documented. A few examples per operation
(`--max-examples`, 8 by default) keep the run to a few minutes on two cores; the seed is fixed so a run
can be repeated. Prints `fuzz: N cases over M operations of K services` and exits non-zero on any
failure, with schemathesis's report of it (the request to reproduce it with) above.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from scte.kit.runtime import ServiceRuntime
from scte.kit.testing import issuer, test_settings
from scte.platform import SERVICES, service_module

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    )
)
"""No 5xx, and every answer as documented; invalid input refused (never accepted as if valid)."""


@dataclass
class Served:
    name: str
    runtime: ServiceRuntime
    server: uvicorn.Server
    task: asyncio.Task[None]
    url: str
    token: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(name: str, data_dir: Path) -> Served:
    module = service_module(name)
    if module is None:
        raise SystemExit(f"fuzz: the {name} service cannot be imported")
    settings = test_settings(data_dir, log_level="error")
    token = issuer(settings).issue("fuzz-staff", ["member", "staff"])
    runtime: ServiceRuntime = module.build_runtime(settings)
    await runtime.start()
    port = _free_port()
    config = uvicorn.Config(
        runtime.app, host="127.0.0.1", port=port, lifespan="off", log_level="critical", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return Served(name, runtime, server, task, f"http://127.0.0.1:{port}", token)


async def stop(served: Served) -> None:
    served.server.should_exit = True
    await served.task
    await served.runtime.stop()


async def seed_records(served: Served) -> dict[str, str]:
    """Real records for the path parameters that name one, so generated bodies reach the logic behind
    a found record instead of a 404 (a member to PATCH, a company to invite to)."""
    headers = {"Authorization": f"Bearer {served.token}"}
    async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=30) as client:
        if served.name == "members":
            body = {"email": "fuzz@example.com", "password": "Vermilion-Quokka-Tundra-5821", "display_name": "Fuzz"}
            r = await client.post("/members", json=body)
            r.raise_for_status()
            return {"path.member_id": str(r.json()["id"])}
        if served.name == "companies":
            body = {"company_id": "fuzz-co", "name": "Fuzz Cable", "admin_member_id": "fuzz-admin"}
            (await client.post("/companies", json=body)).raise_for_status()
            return {"path.company_id": "fuzz-co", "path.member_id": "fuzz-admin"}
    return {}


async def fuzz(served: Served, report_dir: Path, max_examples: int, seed: int) -> dict[str, Any]:
    """Run `st run` against one service; its JSON report's totals."""
    st = Path(sys.executable).with_name("st")
    report = report_dir / f"{served.name}.json"
    config = report_dir / f"{served.name}.toml"
    parameters = await seed_records(served)
    config.write_text("[parameters]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in parameters.items()))
    command = [
        str(st if st.exists() else shutil.which("st") or "st"),
        "--config-file",
        str(config),
        "run",
        f"{served.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {served.token}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",  # hypothesis's lambda-source cache is not thread-safe: 2 workers raised internal errors
        "--request-timeout",
        "30",
        "--no-color",
        "--generation-database",
        "none",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--output-truncate",
        "true",
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=report_dir,  # its cache (.schemathesis/) goes with the run's temporary directory, not the repository
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    totals: dict[str, Any] = {"service": served.name, "returncode": process.returncode, "output": text}
    if report.exists():
        totals["report"] = json.loads(report.read_text())
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--service", action="append", choices=list(SERVICES))
    args = parser.parse_args()
    names = args.service or list(SERVICES)
    return asyncio.run(_run(names, args.max_examples, args.seed))


async def _run(names: list[str], max_examples: int, seed: int) -> int:
    with tempfile.TemporaryDirectory(prefix="scte-fuzz-") as tmp:
        root = Path(tmp)
        results = []
        for name in names:
            served = await serve(name, root / name)
            try:
                results.append(await fuzz(served, root, max_examples, seed))
            finally:
                await stop(served)
    cases = operations = 0
    failed = []
    for result in results:
        report = result.get("report") or {}
        generated = int(report.get("test_cases", {}).get("generated", 0))
        tested = int(report.get("operations", {}).get("tested", 0))
        cases += generated
        operations += tested
        problems = [f"{f['code']} {f['title']} ({', '.join(f['operations'])})" for f in report.get("failures", [])]
        problems += [f"error {e.get('title', e)}" for e in report.get("errors", [])]
        if result["returncode"] != 0 or not report.get("complete", False) or problems:
            failed.append(result["service"])
            print(result["output"])
        print(
            f"fuzz: {result['service']}: {generated} cases over {tested} operations"
            + "".join(f"; {p}" for p in problems)
        )
    print(
        f"fuzz: {cases} cases over {operations} operations of {len(results)} services (max {max_examples} examples "
        f"per operation and phase, seed {seed})" + (f"; FAILED: {', '.join(failed)}" if failed else "; no failure")
    )
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
