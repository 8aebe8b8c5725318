"""The one-off steps of `scte up`, each in a short-lived process of its own:

    python -m scte.supervision.prepare keys DATA SERVICES          # before the broker starts
    python -m scte.supervision.prepare topology DATA SERVICES URL  # while it starts: waits for it
    python -m scte.supervision.prepare seed DATA GATEWAY_URL       # once everything answers

`keys`: every service's broker key (`scte.deploy.broker_keys`), the token signing key pair, the
gateway's secret and the metrics scraper's token, made on the first start. `topology`: the topics and
every service's queue on the broker, then the policies derived from them, with the owner's key.
`seed`: the demonstration data on the first start, and the `.seeded` marker.

Why processes: these steps need every service's queue declaration (so every service's modules), the
AWS SDK, the token library and the seed's HTTP client; done in the supervisor, all of that would stay
in its memory for the life of the platform (over 100 MB). `SERVICES` is a comma-separated list of the
names. The messages go to the supervisor's console (stderr, inherited); a failure exits non-zero.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["SEEDED_MARKER", "keys", "main", "seed", "topology"]

SEEDED_MARKER = ".seeded"
BROKER_WAIT_SECONDS = 300.0
"""How long `topology` waits for the broker to listen (the supervisor gives up on it sooner)."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def keys(data_dir: Path, services: list[str]) -> None:
    from scte.deploy.broker_keys import ensure_keys
    from scte.kit.auth import generate_key_pair
    from scte.kit.forwarding import ensure_gateway_secret, gateway_secret_path
    from scte.kit.metrics_token import ensure_metrics_token
    from scte.kit.settings import Settings
    from scte.queue.server.config import DEFAULT_ACCOUNT_ID

    if services:  # the embedded broker's keys, one per service (none for another broker)
        ensure_keys(data_dir, services, DEFAULT_ACCOUNT_ID)
    settings = Settings(data_dir=data_dir)
    if generate_key_pair(settings.private_key_path, settings.public_key_path):
        _say(f"generated the token signing key pair in {settings.private_key_path.parent}")
    ensure_gateway_secret(gateway_secret_path(settings))  # the gateway proves the visitor's address with it
    ensure_metrics_token(settings.metrics_token_path)  # for the scraper of every /metrics (docs/security.md)


def _wait_listening(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    deadline = time.monotonic() + BROKER_WAIT_SECONDS
    while True:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(address) == 0:
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"the broker at {endpoint} did not listen within {BROKER_WAIT_SECONDS:.0f} s")
        time.sleep(0.1)


async def _topology(data_dir: Path, services: list[str], endpoint: str) -> None:
    from scte.bus.transports.aws import AwsTransport
    from scte.deploy.broker_keys import ADMIN, identity_dir, read_key
    from scte.deploy.policies import apply_policies, platform_policies
    from scte.platform import topology as platform_topology
    from scte.queue.server.config import DEFAULT_ACCOUNT_ID, DEFAULT_REGION

    admin_file = identity_dir(data_dir) / f"{ADMIN}.json"
    wanted = platform_topology(services)  # imports the services' modules while the broker starts
    _wait_listening(endpoint)
    transport = AwsTransport(endpoint_url=endpoint, region=DEFAULT_REGION, credentials_file=admin_file)
    try:
        await transport.provision(wanted)
    finally:
        await transport.close()
    admin = read_key(admin_file)
    policies = platform_policies(services, account=DEFAULT_ACCOUNT_ID, region=DEFAULT_REGION)
    await apply_policies(
        policies,
        endpoint_url=endpoint,
        region=DEFAULT_REGION,
        access_key=(admin.access_key_id, admin.secret_access_key),
    )


def topology(data_dir: Path, services: list[str], endpoint: str) -> None:
    asyncio.run(_topology(data_dir, services, endpoint))


def seed(data_dir: Path, gateway: str) -> None:
    from rich.console import Console

    from scte.seed import seed as load_seed
    from scte.supervision.progress import step

    _say("first start: loading the seed data ...")
    with step(Console(stderr=True), "seeding") as seeding:  # a live line on a terminal, one line in a log
        report = asyncio.run(load_seed(gateway, data_dir, step=seeding.note))
        seeding.finish("seed data loaded")
    # the marker holds counts only (no password), readable by the install's owner alone
    fd = os.open(data_dir / SEEDED_MARKER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(report.public(), out, indent=2)
    _say(
        f"seeded {report.members} members, {report.courses} courses, {report.companies} companies"
        + (f" (skipped: {'; '.join(report.skipped)})" if report.skipped else "")
    )
    if report.staff_password is not None:
        # Shown here once and kept nowhere: `scte admin reset-password` makes a new one.
        _say(
            f"staff sign-in: {report.staff_email}  password: {report.staff_password}\n"
            "  (shown once, not stored: keep it now; `scte admin reset-password "
            f"{report.staff_email}` sets a new one)"
        )


def main(args: list[str] | None = None) -> None:
    args = sys.argv[1:] if args is None else args
    usage = "usage: python -m scte.supervision.prepare keys|topology|seed DATA ..."
    if len(args) < 2:
        raise SystemExit(usage)
    step, data_dir = args[0], Path(args[1])
    if step == "keys" and len(args) == 3:
        keys(data_dir, [s for s in args[2].split(",") if s])
    elif step == "topology" and len(args) == 4:
        topology(data_dir, [s for s in args[2].split(",") if s], args[3])
    elif step == "seed" and len(args) == 3:
        seed(data_dir, args[2])
    else:
        raise SystemExit(usage)


if __name__ == "__main__":
    main()
