"""`scte up`: the whole platform on one machine, each part its own process.

Order of start: the broker (`scte queue serve`), the topology provisioned on it, the token key pair
(first start), the mail server, every service that has a `service.py`, the gateway; then it waits for
every `/health`, loads the seed data on the first start, and prints where everything is. Ctrl-C or
SIGTERM stops the children in the reverse order (SIGTERM, a grace period, then SIGKILL). Everything
lives in the data directory, so a restart keeps all data.

Children die with `scte up`, however it ends (each is started through `scte.supervision.launch`, which
binds it to the supervisor with Linux's parent-death signal), and one `scte up` holds a data directory
at a time (`<data>/run/up.lock`), so `scte down --data DIR` finds it. The data directory is the
owner's only (0700, files 0600: the umask of every child is 077), and `processes.json` holds no
credential from the environment (`scte.supervision.datadir`).

The broker runs SigV4 strict: each service has its own key, generated on the first start and kept 0600
under `<data>/keys/broker/` (`scte.deploy.broker_keys`), and the topics' and queues' policies derived from
the topology (`scte.deploy.policies`) say what each may do; `scte up` itself provisions with the owner's key.

`--replicas notifications=3,search=2` runs several processes of a service, competing consumers of its
queue; replica 0 serves its API, the others start once it is healthy (`scte.supervision.replicas`).

Ports (`resolve_ports`): `--gateway-port`, `--broker-port`, `--mail-port` when given; else, with
`--port-base N`, a block of 13 from N (gateway, broker, mail, then the services in `SERVICES` order);
else the environment (`SCTE_GATEWAY_PORT`, `SCTE_BROKER_PORT`, `SCTE_SMTP_PORT`, `SCTE_<SERVICE>_PORT`);
else the platform's defaults. A port in use stops the start with the flag or variable that moves it.
`<data>/run/processes.json` lists the children (pid, command, environment) so a test can stop one
service and start it again; `scte status` reads it (`scte.supervision.status`). The long steps (the
broker, the services' first start with their migrations, the seed data) show their progress
(`scte.supervision.progress`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

from rich.console import Console
from rich.table import Table

import scte
from scte.deploy.broker_keys import broker_file, identity_dir
from scte.platform import BROKER_PORT, GATEWAY_PORT, SERVICES, SMTP_PORT, installed_services
from scte.supervision.datadir import public_environment, secure_data_dir
from scte.supervision.forkserver import ForkedProcess, ForkServer, become_subreaper, reap_orphans
from scte.supervision.instance import AlreadyRunning, InstanceLock, process_started
from scte.supervision.launch import launcher_argv
from scte.supervision.prepare import SEEDED_MARKER
from scte.supervision.progress import step
from scte.supervision.replicas import ReplicasError, check_database, replica_environment, replica_name

__all__ = ["PORT_FLAGS", "PORT_NAMES", "Child", "PortError", "Supervisor", "how_to_move", "resolve_ports", "up"]


class _Console(Console):
    """rich's console, except that a closed output (`scte up | tee log`, and Ctrl-C kills tee) silences
    it instead of exiting: the supervisor must still stop its children."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


console = _Console(stderr=True)
# A child that crashes (any exit but a clean one or SIGTERM's) is started again after 1, 2, 4 ... seconds,
# at most RESTART_MAX_DELAY apart; a child that has run RESTART_RESET seconds starts that count afresh.
RESTART_MAX_DELAY = 30.0
RESTART_RESET = 60.0


@dataclass
class Child:
    name: str
    argv: list[str]
    port: int
    health: str | None  # URL answering 200 when ready, None: TCP port only
    process: subprocess.Popen[bytes] | ForkedProcess | None = None
    log_path: Path | None = None
    started_at: float = 0.0  # time.monotonic() of the last start
    restarts: int = 0  # crashes in a row; reset once the child has run RESTART_RESET seconds
    env: dict[str, str] = field(default_factory=dict)  # on top of the supervisor's (a replica's index and port)
    forked: bool = False  # `python -m <module>` forked from the fork server when it runs (shares its imports)


PORT_FLAGS = {"gateway": "--gateway-port", "broker": "--broker-port", "smtp": "--mail-port"}
"""The `scte up` flags of the three ports an operator meets; the services' ports move with --port-base
or their SCTE_<SERVICE>_PORT variable."""
PORT_NAMES = ("gateway", "broker", "smtp", *SERVICES)
"""Every port `scte up` listens on, in the order of a --port-base block (13 ports from the base)."""


class PortError(ValueError):
    """Ports that cannot be used as given (out of range, not a number, or one port twice)."""


def port_variable(name: str) -> str:
    return f"SCTE_{name.upper()}_PORT"


def how_to_move(name: str) -> str:
    """How an operator changes the port of `name`: its flag (if it has one) or its variable."""
    flag = PORT_FLAGS.get(name)
    return f"{flag} or {port_variable(name)}" if flag else port_variable(name)


def _defaults() -> dict[str, int]:
    return {
        "gateway": GATEWAY_PORT,
        "broker": BROKER_PORT,
        "smtp": SMTP_PORT,
        **{name: info.port for name, info in SERVICES.items()},
    }


def resolve_ports(
    *,
    gateway: int | None = None,
    broker: int | None = None,
    mail: int | None = None,
    base: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """name -> port for every part: its flag, else `base` + its place in PORT_NAMES (--port-base), else
    its SCTE_<NAME>_PORT variable, else the platform's default. Raises PortError naming the flag or
    variable at fault."""
    environ = os.environ if environ is None else environ
    if base is not None and not 1 <= base <= 65535 - len(PORT_NAMES) + 1:
        raise PortError(f"--port-base {base}: the {len(PORT_NAMES)} ports from it must lie within 1-65535")
    ports: dict[str, int] = {}
    for index, (name, default) in enumerate(_defaults().items()):
        value = environ.get(port_variable(name), "").strip()
        if value:
            if not value.isdigit() or not 1 <= int(value) <= 65535:
                raise PortError(f"{port_variable(name)}={value!r} is not a port (1-65535)")
            default = int(value)
        ports[name] = base + index if base is not None else default
    for name, flag in zip(("gateway", "broker", "smtp"), (gateway, broker, mail), strict=True):
        if flag is not None:
            if not 1 <= flag <= 65535:
                raise PortError(f"{PORT_FLAGS[name]} {flag} is not a port (1-65535)")
            ports[name] = flag
    taken: dict[int, str] = {}
    for name, port in ports.items():
        if port in taken:
            raise PortError(
                f"{taken[port]} and {name} would both listen on {port}: "
                f"change {how_to_move(name)} (or {how_to_move(taken[port])})"
            )
        taken[port] = name
    return ports


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _free_port(host: str) -> int:
    """A port free now on `host` (the kernel's choice); a replica binds it a moment later."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Supervisor:
    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        test_clock: bool = False,
        log_level: str = "info",
        replicas: dict[str, int] | None = None,
        broker: str = "embedded",
        database: str = "sqlite",
        provision: bool = False,
        ports: Mapping[str, int] | None = None,
    ):
        from scte.kit.switches import parse_broker, parse_database

        self.data_dir = data_dir.resolve()
        # the two switches (`--broker`, `--database`), checked again here for callers other than the CLI
        self.broker = parse_broker(broker)
        self.database = parse_database(database)
        self.provision = provision
        self.host = host
        self.test_clock = test_clock
        self.log_level = log_level
        self.ports = dict(resolve_ports() if ports is None else ports)  # name -> port (resolve_ports)
        self.gateway_port = self.ports["gateway"]
        self.broker_port = self.ports["broker"]
        self.smtp_port = self.ports["smtp"]
        self.children: list[Child] = []
        self.forkserver: ForkServer | None = None
        self.services = installed_services()  # not imported here: the supervisor keeps no service's code
        self.env = self._environment()
        self.replicas = dict(replicas or {})  # service -> processes (1 when not named)

    def _environment(self) -> dict[str, str]:
        src = str(Path(scte.__file__).resolve().parents[1])
        env = dict(os.environ)
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p),
                "SCTE_DATA_DIR": str(self.data_dir),
                "SCTE_HOST": self.host,
                "SCTE_TRANSPORT": "aws",
                "SCTE_BROKER": self.broker,
                "SCTE_DATABASE": self.database,
                "SCTE_SMTP_HOST": self.host,
                "SCTE_SMTP_PORT": str(self.smtp_port),
                "SCTE_GATEWAY_PORT": str(self.gateway_port),
                "SCTE_GATEWAY_SERVICES": ",".join(self.services),
                "SCTE_LOG_LEVEL": self.log_level,
                # each service reads its own broker key from <dir>/<service>.json (a path, not a secret)
                "SCTE_BROKER_IDENTITY_DIR": str(identity_dir(self.data_dir)),
                # the topology and its policies are provisioned by `scte up` with the owner's key: a
                # service's key may use its topic and its queues, not create or change them
                "SCTE_PROVISION_ON_START": "false",
                # every process's spans to the install's span store (the console's trace view)
                "SCTE_SPAN_STORE": "true",
            }
        )
        if self.broker == "embedded":
            env["SCTE_BROKER_PORT"] = str(self.broker_port)
            env["AWS_ENDPOINT_URL"] = f"http://{self.host}:{self.broker_port}"  # for the AWS CLI beside it
        else:
            # another broker: each service's own credentials from the SDK's chain, and it checks the topology
            # rather than provisioning it (scte.kit.settings.Settings.production)
            for name in ("SCTE_BROKER_IDENTITY_DIR", "SCTE_PROVISION_ON_START"):
                del env[name]
            if self.broker == "aws":  # AWS's own endpoints: no override from the environment or ~/.aws/config
                for name in [n for n in env if n.startswith("AWS_ENDPOINT_URL")]:
                    del env[name]
                env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
            else:
                env["AWS_ENDPOINT_URL"] = self.broker
        for name in SERVICES:
            env[port_variable(name)] = str(self.ports[name])
        # links in mail (a password reset) point at the gateway unless the operator names another origin
        env.setdefault("SCTE_PUBLIC_URL", f"http://{self.host}:{self.gateway_port}")
        if self.test_clock:
            env["SCTE_CLOCK_FILE"] = str(self.data_dir / "clock-offset")
        return env

    @property
    def broker_url(self) -> str | None:
        """The SQS/SNS endpoint: the embedded broker's, the `--broker` URL, or None (AWS's own)."""
        if self.broker == "embedded":
            return f"http://{self.host}:{self.broker_port}"
        return None if self.broker == "aws" else self.broker

    def broker_label(self) -> str:
        return self.broker_url or "AWS (the SDK's credentials and region)"

    def service_port(self, name: str) -> int:
        return int(self.env[f"SCTE_{name.upper()}_PORT"])

    # -- children ------------------------------------------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        self._launch(child)
        self.children.append(child)
        self._write_registry()

    def _launch(self, child: Child) -> None:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        child.log_path = logs / f"{child.name}.log"
        out = child.log_path.open("ab")
        env = {**self.env, **child.env}
        forked = None
        if child.forked and self.forkserver is not None and child.argv[:2] == [sys.executable, "-m"]:
            forked = self.forkserver.spawn(child.argv[2], child.argv[3:], env, out.fileno())
            if forked is None and self.forkserver.failure:
                console.print(
                    f"[yellow]the fork server failed ({self.forkserver.failure}); starting processes alone[/]"
                )
                self.forkserver = None
        child.process = forked or subprocess.Popen(
            launcher_argv(child.argv),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        child.started_at = time.monotonic()

    def _start_forkserver(self) -> None:
        """The fork server imports the services' libraries while the keys and the broker are made."""
        if become_subreaper():
            logs = self.data_dir / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            self.forkserver = ForkServer(self.env, logs / "forkserver.log")

    @staticmethod
    def crashed(returncode: int) -> bool:
        """A crash, as opposed to a stop someone asked for (a clean exit, or SIGTERM's)."""
        return returncode not in (0, -signal.SIGTERM)

    def _write_registry(self) -> None:
        run = self.data_dir / "run"
        run.mkdir(parents=True, exist_ok=True)
        env_keys = [k for k in self.env if k.startswith(("SCTE_", "AWS_")) or k == "PYTHONPATH"]
        registry = {
            "supervisor": os.getpid(),
            "supervisor_started": process_started(os.getpid()),
            "gateway": f"http://{self.host}:{self.gateway_port}",
            "env": public_environment(self.env, env_keys),
            "children": {
                c.name: {
                    "pid": c.process.pid if c.process else None,
                    "started": process_started(c.process.pid) if c.process else None,
                    "argv": c.argv,
                    "port": c.port,
                    "health": c.health,
                    **({"env": public_environment(c.env, list(c.env))} if c.env else {}),
                }
                for c in self.children
            },
        }
        (run / "processes.json").write_text(json.dumps(registry, indent=2), encoding="utf-8")

    def _wait_ready(self, child: Child, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.process is not None and child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}; see {child.log_path}")
            ready = _http_ok(child.health) if child.health else _listening(self.host, child.port)
            if ready:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{child.name} not ready after {timeout:.0f} s; see {child.log_path}")

    def _check_ports_free(self) -> None:
        ports = {"smtp": self.smtp_port, "gateway": self.gateway_port}
        if self.broker == "embedded":
            ports["broker"] = self.broker_port
        ports.update({name: self.service_port(name) for name in self.services})
        busy = [
            f"{name} {port} (change: {how_to_move(name)})"
            for name, port in ports.items()
            if _listening(self.host, port)
        ]
        if busy:
            raise RuntimeError(
                "ports already in use: "
                + "; ".join(busy)
                + f". Or move all {len(PORT_NAMES)} with --port-base N. Another `scte up` running? `scte status` tells."
            )

    def _prepare(self, step: str, *args: str) -> subprocess.Popen[bytes] | ForkedProcess:
        """A one-off step in a process of its own (`scte.supervision.prepare`), its messages on our stderr.
        Forked from the fork server when it runs (but `keys`, which comes first): the topology and the
        seed then skip importing the libraries again, a few seconds of CPU at every start."""
        module, step_args = "scte.supervision.prepare", [step, str(self.data_dir), *args]
        if step != "keys" and self.forkserver is not None:
            forked = self.forkserver.spawn(module, step_args, self.env, sys.stderr.fileno())
            if forked is not None:
                return forked
        argv = [sys.executable, "-m", module, *step_args]
        return subprocess.Popen(launcher_argv(argv), env=self.env, stdout=sys.stderr.fileno())

    @staticmethod
    def _abandon(step: subprocess.Popen[bytes] | ForkedProcess) -> None:
        step.kill()
        step.wait()

    def _finish(self, step: subprocess.Popen[bytes] | ForkedProcess, what: str) -> None:
        """Wait for a step to succeed; interrupted meanwhile (Ctrl-C), stop it."""
        try:
            code = step.wait()
        except BaseException:
            self._abandon(step)
            raise
        if code != 0:
            raise RuntimeError(f"{what} failed (exit {code}); see the messages above")

    def start(self) -> None:
        self._check_ports_free()
        self._check_replicas()
        self._start_forkserver()
        for name in SERVICES:
            if name not in self.services:
                console.print(f"[yellow]warning:[/] service {name} has no service.py yet; not started")
        py = sys.executable
        # the token key pair, the gateway's secret, the metrics token (first start); with the embedded
        # broker, the services' broker keys too
        keys = self._prepare("keys", ",".join(self.services) if self.broker == "embedded" else "")
        self._finish(keys, "making the keys")
        if self.broker == "embedded":
            self._start_broker()
        else:
            asyncio.run(self._deployed_topology())
        if self.database != "sqlite":
            self._ensure_databases()
        mail = Child("mail", [py, "-m", "scte.web.mail", str(self.data_dir), str(self.smtp_port)], self.smtp_port, None)
        self._spawn(mail)
        for name in self.services:
            port = self.service_port(name)
            module = SERVICES[name].module
            argv = (
                [py, "-m", module]
                if find_spec(f"{module}.__main__") is not None
                else [py, "-c", f"from {module}.service import main; main()"]
            )
            self._spawn(Child(name, argv, port, f"http://{self.host}:{port}/health", forked=True))
        gateway = Child(
            "gateway",
            [py, "-m", "scte.web.gateway"],
            self.gateway_port,
            f"http://{self.host}:{self.gateway_port}/health",
            forked=True,
        )
        waiting = [child for child in self.children if child.health is not None]
        first = not (self.data_dir / SEEDED_MARKER).exists()
        label = "services starting" + (" (first start: database migrations)" if first else "")
        with step(console, label, total=len(waiting) + 1) as services_step:
            self._wait_ready(mail)
            services_step.advance("mail")
            for child in waiting:
                self._wait_ready(child)
                services_step.advance(child.name)
            services_step.finish(f"mail and {len(waiting)} services ready" + (" (migrated)" if first else ""))
        self._start_replicas()
        with step(console, f"gateway on {self.host}:{self.gateway_port}"):
            self._spawn(gateway)
            self._wait_ready(gateway)

    def _start_broker(self) -> None:
        """The embedded broker, SigV4 strict with a key per service, and the topology on it."""
        py = sys.executable
        broker = Child(
            "broker",
            [
                py,
                "-m",
                "scte.cli",
                "queue",
                "serve",
                "--host",
                self.host,
                "--port",
                str(self.broker_port),
                "--data",
                str(self.data_dir / "queue"),
                "--log-level",
                "warning",
                # SigV4 verified, every key's principal checked against the topic's or queue's policy
                "--auth",
                "strict",
                "--credentials",
                str(broker_file(self.data_dir)),
            ],
            self.broker_port,
            None,
        )
        with step(console, "starting the broker") as broker_step:
            self._spawn(broker)
            # the topology and its policies, with the owner's key; the step loads the services' declarations
            # while the broker starts, then waits for it
            provision = self._prepare("topology", ",".join(self.services), f"http://{self.host}:{self.broker_port}")
            try:
                self._wait_ready(broker)
            except BaseException:
                self._abandon(provision)
                raise
            broker_step.note("provisioning topics, queues and their policies")
            self._finish(provision, "provisioning the topology")
            broker_step.finish(f"broker on {self.host}:{self.broker_port}, topics and queues provisioned")

    async def _deployed_topology(self) -> None:
        """Another broker: the topology made first when asked (`--provision`, a development broker), then
        checked whole; what is missing stops `scte up` before any service starts, named."""
        from scte.bus.transport import TransportError
        from scte.bus.transports._check import TopologyMissing
        from scte.bus.transports.aws import AwsTransport

        transport = AwsTransport(self.env.get("SCTE_QUEUE_PREFIX", ""), self.broker_url)
        from scte.platform import topology

        wanted = topology(self.services)
        try:
            if self.provision:
                await transport.provision(wanted)
                console.print(f"provisioned the topology on {self.broker_label()}")
            absent = await transport.check(wanted)
        except TransportError as exc:
            raise RuntimeError(f"the broker at {self.broker_label()}: {exc}") from exc
        finally:
            await transport.close()
        if absent:
            raise RuntimeError(str(TopologyMissing("", self.broker_label(), absent)))

    def _ensure_databases(self) -> None:
        from scte.kit.settings import service_database_url
        from scte.supervision.databases import DatabaseServerError, ensure_databases

        urls = [service_database_url(self.database, name) for name in self.services]
        try:
            created = asyncio.run(ensure_databases(urls))
        except DatabaseServerError as exc:
            raise RuntimeError(str(exc)) from exc
        if created:
            console.print(f"created the databases {', '.join(created)}")

    def _check_replicas(self) -> None:
        """Each replicated service exists here and has a database its processes can share."""
        for name in self.replicas:
            if name not in self.services:
                raise RuntimeError(f"--replicas: service {name} has no service.py here; it cannot be started")
            url = self.env.get(f"SCTE_{name.upper()}_DATABASE_URL")
            if url:
                try:
                    check_database(name, url)
                except ReplicasError as exc:
                    raise RuntimeError(str(exc)) from None

    def _start_replicas(self) -> None:
        """Replicas 1..N-1 of each service named in `--replicas`, once replica 0 is healthy (it has
        migrated the database): consumers of the same queue, `/health` on a loopback port each
        (`scte.supervision.replicas`)."""
        started: list[Child] = []
        for name, count in self.replicas.items():
            first = next(c for c in self.children if c.name == name)
            for index in range(1, count):
                port = _free_port(self.host)
                child = Child(
                    replica_name(name, index),
                    first.argv,
                    port,
                    f"http://{self.host}:{port}/health",
                    env=replica_environment(index, port),
                )
                self._spawn(child)
                started.append(child)
        for child in started:
            self._wait_ready(child)

    def seed_if_first_start(self) -> None:
        marker = self.data_dir / SEEDED_MARKER
        if marker.exists():
            return
        # the step shows its own progress (scte.supervision.prepare.seed): it prints the staff password
        self._finish(self._prepare("seed", f"http://{self.host}:{self.gateway_port}"), "loading the seed data")

    def print_table(self) -> None:
        table = Table(title="SCTE Platform is up", show_lines=False)
        table.add_column("part")
        table.add_column("where")
        table.add_column("pid", justify="right")
        gateway = f"http://{self.host}:{self.gateway_port}"
        table.add_row("website (members, /company, /staff)", f"{gateway}/", "")
        for child in self.children:
            where = {
                "broker": f"http://{self.host}:{child.port} (SQS/SNS; AWS_ENDPOINT_URL)",
                "mail": f"smtp://{self.host}:{child.port} (mailbox {self.data_dir / 'mail' / 'mail.db'})",
                "gateway": f"{gateway}/api/<service>/ (REST; API docs: {gateway}/docs)",
            }.get(child.name, f"http://{self.host}:{child.port}/docs")
            if child.env:  # a replica after the first: it consumes; the API is replica 0's
                where = f"http://{self.host}:{child.port}/health (replica: consumes, no API)"
            table.add_row(child.name, where, str(child.process.pid if child.process else ""))
        if self.broker != "embedded":
            table.add_row("broker", f"{self.broker_label()} (SQS/SNS; the topology checked)", "")
        if self.database != "sqlite":
            from sqlalchemy.engine import make_url

            table.add_row("databases", f"{make_url(self.database).render_as_string()}_<service> (PostgreSQL)", "")
        table.add_row("data", str(self.data_dir), "")
        console.print(table)
        console.print("`scte status` tells how it is doing. Ctrl-C stops everything.")

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM in reverse start order (gateway and services together, then mail, then the broker)."""
        groups = [
            [c for c in self.children if c.name not in ("broker", "mail")],
            [c for c in self.children if c.name == "mail"],
            [c for c in self.children if c.name == "broker"],
        ]
        for group in groups:
            live = [c for c in group if c.process is not None and c.process.poll() is None]
            for child in live:
                assert child.process is not None
                child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for child in live:
                assert child.process is not None
                try:
                    child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    console.print(f"[yellow]{child.name} did not stop in {grace:.0f} s; killing it[/]")
                    child.process.kill()
                    child.process.wait()
        if self.forkserver is not None:
            self.forkserver.close()
            self.forkserver = None

    def watch(self) -> None:
        """Wait for Ctrl-C or SIGTERM. A child that crashes is started again, with a growing delay; one that
        was stopped on purpose (a clean exit or SIGTERM, as an operator or a test does) is reported and left."""
        stop = False

        def request_stop(_sig: int, _frame: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        reported: set[str] = set()
        due: dict[str, float] = {}  # child name -> when to start it again
        while not stop:
            now = time.monotonic()
            for child in self.children:
                if child.process is None or child.process.poll() is None:
                    if child.process is not None and now - child.started_at >= RESTART_RESET:
                        child.restarts = 0
                    continue
                code = child.process.returncode
                assert code is not None  # polled just above
                if not self.crashed(code):
                    if child.name not in reported:
                        reported.add(child.name)
                        console.print(f"[yellow]{child.name} stopped (exit {code})[/]; not restarted")
                    continue
                if child.name not in due:
                    delay = min(RESTART_MAX_DELAY, 2.0**child.restarts)
                    due[child.name] = now + delay
                    console.print(
                        f"[red]{child.name} crashed (exit {code})[/]; restarting in {delay:.0f} s "
                        f"(log: {child.log_path})"
                    )
                elif now >= due[child.name]:
                    del due[child.name]
                    child.restarts += 1
                    self._launch(child)
                    self._write_registry()
                    console.print(f"{child.name} restarted (pid {child.process.pid})")
            reap_orphans({c.process.pid for c in self.children if c.process is not None})
            time.sleep(0.3)


def up(
    data_dir: Path,
    *,
    seed: bool = True,
    test_clock: bool = False,
    log_level: str = "info",
    replicas: dict[str, int] | None = None,
    broker: str = "embedded",
    database: str = "sqlite",
    provision: bool = False,
    ports: Mapping[str, int] | None = None,
) -> int:
    lock = InstanceLock(secure_data_dir(data_dir))
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        console.print(f"[red]scte up failed:[/] {exc} (`scte down --data {data_dir}` stops it)")
        return 1
    supervisor = Supervisor(
        data_dir,
        test_clock=test_clock,
        log_level=log_level,
        replicas=replicas,
        broker=broker,
        database=database,
        provision=provision,
        ports=ports,
    )

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM while starting: stop like Ctrl-C

    signal.signal(signal.SIGTERM, interrupt)
    status = 0
    try:
        supervisor.start()
        if seed:
            supervisor.seed_if_first_start()
        supervisor.print_table()
        supervisor.watch()
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        console.print(f"[red]scte up failed:[/] {exc}")
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        console.print("stopping ...")
        try:
            supervisor.stop()
        finally:
            lock.release()
        console.print("stopped.")
    return status
