"""The end-to-end harness: `scte up` on a temporary data directory and free ports.

Shared by the end-to-end tests (tests/e2e) and the browser tests (tests/browser): each suite's
conftest makes one platform per session with `running_platform(...)`.

Tests talk to the gateway (`platform.url`), read the mail the SMTP server received
(`platform.mails()`, `await platform.wait_for_mail(...)`), move every service's clock
(`platform.set_clock_offset(seconds)`), and stop or start one service (`platform.stop_service`,
`platform.start_service`) for resiliency tests.

`SCTE_E2E_REPLICAS=notifications=2,certification=2` (`make test-replicas`) starts the session's
platform with `scte up --replicas ...`: the same tests, run on several processes of those services.
Stopping or starting a service then stops or starts all its processes.

Production mode, by environment variable (`make test-production`): `SCTE_E2E_BROKER=moto` runs the platform
with `--broker` pointed at a moto_server of its own (the AWS stand-in; the topology made first by
`--provision`, then checked by every service as in production), `SCTE_E2E_DATABASE=postgresql` with
`--database` on the test PostgreSQL (`SCTE_TEST_POSTGRES_URL`), a base name of its own per platform whose
databases are dropped when it stops. The tests are the same; only the platform under them changes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from scte.kit.settings import parse_database, service_database_url
from scte.kit.testing import POSTGRES_URL, skip_postgres_on_purpose
from scte.platform import SERVICES
from scte.web.mail import StoredMail, read_messages

SRC = Path(__file__).resolve().parents[2] / "src"
E2E_BROKER = os.environ.get("SCTE_E2E_BROKER", "embedded")
"""`embedded` (the platform's own broker) or `moto` (a moto_server started per platform, `--broker URL`)."""
E2E_DATABASE = os.environ.get("SCTE_E2E_DATABASE", "sqlite")
"""`sqlite` or `postgresql` (`--database` on the test server, databases made and dropped per platform)."""
STARTUP_TIMEOUT = 240.0 if E2E_BROKER == "embedded" else 480.0  # moto_server: every call through one Python
E2E_TIMEOUT = STARTUP_TIMEOUT + 360.0
"""pytest-timeout of an end-to-end (or browser) test: above the start-up wait it may cover (the session's
`scte up` starts in the first test's setup) plus the test itself on a busy machine. A test that starts
`scte up` more than once says so with its own `@pytest.mark.timeout`."""

REPLICAS_ENV = "SCTE_E2E_REPLICAS"
"""The `--replicas` value of the platform `running_platform` starts (unset: one process per service)."""

__all__ = [
    "E2E_BROKER",
    "E2E_DATABASE",
    "E2E_TIMEOUT",
    "REPLICAS_ENV",
    "STARTUP_TIMEOUT",
    "Platform",
    "launch_up",
    "moto_server",
    "postgres_base",
    "running_platform",
    "scte_env",
    "up_ports",
    "wait_until_up",
]


def _free_ports(count: int) -> list[int]:
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


@dataclass
class Platform:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    extra: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # -- REST ----------------------------------------------------------------------------------------------

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    # -- mail ----------------------------------------------------------------------------------------------

    def mails(self, to: str | None = None) -> list[StoredMail]:
        """Every message the SMTP server received (to one address when given), oldest first."""
        return read_messages(self.data_dir, to)

    async def wait_for_mail(
        self, to: str, predicate: Callable[[StoredMail], bool] = lambda _m: True, timeout: float = 30.0
    ) -> StoredMail:
        """The first mail to `to` that satisfies `predicate`, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for mail in self.mails(to):
                if predicate(mail):
                    return mail
            if time.monotonic() > deadline:
                got = [m.subject for m in self.mails(to)]
                raise AssertionError(f"no matching mail to {to} within {timeout} s (received: {got})")
            await asyncio.sleep(0.2)

    # -- clock ---------------------------------------------------------------------------------------------

    def set_clock_offset(self, seconds: float) -> None:
        """Every service's clock runs `seconds` ahead of the wall clock from now on."""
        (self.data_dir / "clock-offset").write_text(str(seconds), encoding="utf-8")

    # -- accounts ------------------------------------------------------------------------------------------

    def create_staff(self, email: str, name: str = "Test Staff") -> str:
        """`scte admin create-staff` as an operator runs it; the password it shows once."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "scte.cli",
                "admin",
                "create-staff",
                email,
                "--name",
                name,
                "--data",
                str(self.data_dir),
            ],
            env=scte_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.rsplit(": ", 1)[1].strip()

    # -- processes -----------------------------------------------------------------------------------------

    def registry(self) -> dict[str, Any]:
        return dict(json.loads((self.data_dir / "run" / "processes.json").read_text(encoding="utf-8")))

    def processes_of(self, name: str) -> list[str]:
        """The registry's names of the service's processes: `name`, and `name-1`, `name-2` ... when
        `scte up --replicas` runs several."""
        children = self.registry()["children"]
        replicas = [c for c in children if c.startswith(f"{name}-") and c[len(name) + 1 :].isdigit()]
        return [name, *sorted(replicas, key=lambda c: int(c[len(name) + 1 :]))]

    def stop_service(self, name: str, timeout: float = 30.0) -> None:
        """SIGTERM the service's processes (every replica) and wait until they are gone."""
        for process_name in self.processes_of(name):
            self._stop_process(process_name, timeout)

    def _stop_process(self, name: str, timeout: float) -> None:
        process = self.extra.pop(name, None)
        if process is not None:
            process.terminate()
            process.wait(timeout)
            return
        pid = int(self.registry()["children"][name]["pid"])
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} (pid {pid}) did not stop")

    def start_service(self, name: str, timeout: float = 60.0) -> None:
        """Start the service again as `scte up` did (every replica, replica 0 first), and wait for health."""
        for process_name in self.processes_of(name):
            self._start_process(process_name, timeout)

    def _start_process(self, name: str, timeout: float) -> None:
        registry = self.registry()
        child = registry["children"][name]
        env = {**os.environ, **registry["env"], **child.get("env", {})}
        log = (self.data_dir / "logs" / f"{name}.log").open("ab")
        self.extra[name] = subprocess.Popen(child["argv"], env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(child["health"], timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{name} did not become healthy")


def up_ports() -> dict[str, int]:
    """A free port for every part `scte up` starts (gateway, broker, smtp, each service)."""
    names = ["gateway", "broker", "smtp", *SERVICES]
    return dict(zip(names, _free_ports(len(names)), strict=True))


def scte_env(ports: dict[str, int] | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an `scte` command: this checkout's sources, `ports` as SCTE_*_PORT, `extra`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)}
    env.update({f"SCTE_{name.upper()}_PORT": str(port) for name, port in (ports or {}).items()})
    env.update(extra or {})
    return env


def launch_up(
    data_dir: Path,
    ports: dict[str, int],
    log_path: Path,
    *,
    new_session: bool = False,
    seed: bool = True,
    env: dict[str, str] | None = None,
    piped: bool = False,
    args: list[str] | None = None,
    replicas: str | None = None,
) -> subprocess.Popen[bytes]:
    """`scte up --data <data_dir> --test-clock` on `ports` (via SCTE_*_PORT), its output to `log_path`.

    `new_session`: in its own process group, so that a test can send it SIGINT as a terminal's Ctrl-C does.
    `seed=False`: `--no-seed` (a quicker start for tests of the supervisor). `env`: added to the environment.
    `piped`: as an operator runs it, `scte up 2>&1 | tee <log_path>` under `sh` (the process returned).
    `args`: more options of `scte up` (`--broker`, `--database`).
    `replicas`: `--replicas` (e.g. "notifications=2,search=2").
    """
    argv = [sys.executable, "-m", "scte.cli", "up", "--data", str(data_dir), "--test-clock", *(args or [])]
    if not seed:
        argv.append("--no-seed")
    if replicas:
        argv += ["--replicas", replicas]
    if piped:
        command = " ".join(shlex.quote(a) for a in argv) + " 2>&1 | tee " + shlex.quote(str(log_path))
        return subprocess.Popen(
            ["sh", "-c", command],
            env=scte_env(ports, env),
            stdout=subprocess.DEVNULL,
            start_new_session=new_session,
        )
    with log_path.open("wb") as log:
        return subprocess.Popen(
            argv,
            env=scte_env(ports, env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


def wait_until_up(
    process: subprocess.Popen[bytes],
    data_dir: Path,
    log_path: Path,
    url: str,
    timeout: float = STARTUP_TIMEOUT,
    *,
    seeded: bool = True,
) -> None:
    """Until `scte up` has seeded (or found the `.seeded` marker; `seeded=False`: not waited for),
    printed its table, and the gateway answers."""
    deadline = time.monotonic() + timeout
    while True:
        log = log_path.read_text() if log_path.exists() else ""
        if process.poll() is not None:
            raise RuntimeError(f"scte up exited with {process.returncode}:\n{log[-4000:]}")
        ready = (not seeded or (data_dir / ".seeded").exists()) and "Ctrl-C stops everything" in log
        if ready:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"scte up not ready in {timeout} s:\n{log[-4000:]}")
        time.sleep(0.3)
    with urllib.request.urlopen(url + "/health", timeout=10) as response:
        assert response.status == 200


@contextmanager
def moto_server(log_path: Path) -> Iterator[str]:
    """A moto_server (SQS and SNS, the AWS stand-in) on a free loopback port until the block ends; its URL."""
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if executable is None:
        raise RuntimeError("moto_server is not installed (pip install -e '.[dev]')")
    port = _free_ports(1)[0]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [executable, "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_CALL_RESET_API": "false"},
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {process.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(endpoint + "/moto-api/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def postgres_base(server: str = POSTGRES_URL) -> Iterator[str]:
    """A base name of its own on the test PostgreSQL, as `scte up --database` takes it; every service's
    database under it (`<base>_<service>`, made by `scte up`) is dropped when the block ends."""
    import asyncio

    from scte.supervision.databases import drop_databases

    skip_postgres_on_purpose()
    base = parse_database(
        make_url(server)
        .set(drivername="postgresql", database=f"scte_e2e_{uuid.uuid4().hex[:12]}")
        .render_as_string(hide_password=False)
    )
    try:
        yield base
    finally:
        asyncio.run(drop_databases([service_database_url(base, name) for name in SERVICES]))


def wait_for_idle_queues(endpoint: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """Until every queue on the SQS endpoint is empty, nothing in flight, twice in a row: the seed's thousands
    of events are consumed. The embedded broker drains them within the seeding; moto_server takes minutes,
    and the tests' own events would wait behind them (a standard queue delivers in its order there)."""
    import boto3

    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    deadline = time.monotonic() + timeout
    quiet = 0
    busy: dict[str, int] = {}
    while quiet < 2:
        busy = {}
        for url in sqs.list_queues().get("QueueUrls", []):
            if url.rsplit("/", 1)[-1].removesuffix(".fifo").endswith("-dlq"):
                continue  # what is dead-lettered stays there
            counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
            total = sum(int(counts.get(n, 0)) for n in names)
            if total:
                busy[url.rsplit("/", 1)[-1]] = total
        quiet = 0 if busy else quiet + 1
        if time.monotonic() > deadline:
            raise RuntimeError(f"the queues on {endpoint} not drained in {timeout} s: {busy}")
        time.sleep(1.0)


def platform_options(stack: ExitStack, directory: Path, env: dict[str, str]) -> list[str]:
    """The `scte up` options of the mode chosen by SCTE_E2E_BROKER and SCTE_E2E_DATABASE, and what they need
    (a moto_server, a PostgreSQL base) entered on `stack`; what its environment needs added to `env`."""
    args: list[str] = []
    if E2E_BROKER == "moto":
        endpoint = stack.enter_context(moto_server(directory / "moto_server.log"))
        args += ["--broker", endpoint, "--provision"]
        # moto_server holds a FIFO group's next message from a long poll begun while the group was in flight
        # until that poll ends (SQS does not): short polls, as `scte.kit.settings.Settings.receive_wait_seconds` says
        env["SCTE_RECEIVE_WAIT_SECONDS"] = "2"
    elif E2E_BROKER != "embedded":
        raise RuntimeError(f"SCTE_E2E_BROKER={E2E_BROKER!r}: expected embedded or moto")
    if E2E_DATABASE == "postgresql":
        args += ["--database", stack.enter_context(postgres_base())]
    elif E2E_DATABASE != "sqlite":
        raise RuntimeError(f"SCTE_E2E_DATABASE={E2E_DATABASE!r}: expected sqlite or postgresql")
    return args


@contextmanager
def running_platform(tmp_path_factory: pytest.TempPathFactory, name: str = "scte-up") -> Iterator[Platform]:
    """`scte up` on fresh ports and a fresh data directory until the block ends (then Ctrl-C, as a person would),
    on the broker and database SCTE_E2E_BROKER and SCTE_E2E_DATABASE choose (`platform_options`)."""
    with ExitStack() as stack:
        data_dir = tmp_path_factory.mktemp(name) / "data"
        env: dict[str, str] = {}
        args = platform_options(stack, data_dir.parent, env)
        yield stack.enter_context(_running(data_dir, args, env))


@contextmanager
def _running(data_dir: Path, args: list[str], env: dict[str, str]) -> Iterator[Platform]:
    ports = up_ports()
    log_path = data_dir.parent / "scte-up.log"
    process = launch_up(data_dir, ports, log_path, args=args, env=env, replicas=os.environ.get(REPLICAS_ENV) or None)
    url = f"http://127.0.0.1:{ports['gateway']}"
    try:
        wait_until_up(process, data_dir, log_path, url)
        if E2E_BROKER == "moto":
            wait_for_idle_queues(args[args.index("--broker") + 1])
        platform = Platform(url, data_dir, process)
        yield platform
        for extra in platform.extra.values():
            extra.terminate()
            extra.wait(30)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
