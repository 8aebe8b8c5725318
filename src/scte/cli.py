"""The `scte` command: `scte up`, `scte down`, `scte status`, `scte seed`, `scte admin ...`,
`scte queue serve`, `scte contracts asyncapi`, `scte deploy ...`, `scte run module:service`; shell
completion with `scte --install-completion`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

# add_completion: `scte --install-completion` (bash, zsh, fish, PowerShell) and `--show-completion`
app = typer.Typer(no_args_is_help=True, add_completion=True, help="SCTE Platform.")
queue_app = typer.Typer(no_args_is_help=True, help="The SQS-compatible broker.")
app.add_typer(queue_app, name="queue")
contracts_app = typer.Typer(no_args_is_help=True, help="The message contracts: events and topology.")
app.add_typer(contracts_app, name="contracts")
admin_app = typer.Typer(no_args_is_help=True, help="Administration of an install (keys, accounts), on its host.")
app.add_typer(admin_app, name="admin")
deploy_app = typer.Typer(
    no_args_is_help=True, help="Deployment to AWS: the CloudFormation template, the Lambda package."
)
app.add_typer(deploy_app, name="deploy")
from scte.cli_queues import dlq_app, queues_app  # noqa: E402  (the console's operations: scte.cli_queues)

app.add_typer(queues_app, name="queues")
app.add_typer(dlq_app, name="dlq")
from scte.cli_trace import trace as _trace  # noqa: E402  (scte trace: the console's trace view, scte.cli_trace)

app.command("trace")(_trace)

HostOpt = Annotated[str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Port to listen on (default 9324).")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Directory of the broker's data (default ./var/queue).")]
AccountOpt = Annotated[
    str | None, typer.Option("--account-id", help="Account id in queue URLs and ARNs (default 123456789012).")
]
RegionOpt = Annotated[str | None, typer.Option("--region", help="Region in ARNs (default us-east-1).")]
DurabilityOpt = Annotated[
    str | None,
    typer.Option("--durability", help="normal: survives a process crash; full: also a power loss (fsync)."),
]
TestModeOpt = Annotated[
    bool | None,
    typer.Option(
        "--test-mode/--no-test-mode",
        help="Answer POST /moto-api/reset (wipes all data) for conformance tests. Never in production.",
    ),
]
LogLevelOpt = Annotated[
    str, typer.Option("--log-level", help="Log level: info logs one JSON line per request; warning silences them.")
]
AuthOpt = Annotated[
    str | None,
    typer.Option("--auth", help="any: accept any credentials (default); strict: verify SigV4 signatures."),
]
CredentialsOpt = Annotated[
    Path | None,
    typer.Option(
        "--credentials",
        help="JSON file (mode 600) of the principals' keys for --auth strict; queue and topic policies apply "
        "to them (or SCTE_QUEUE_CREDENTIALS). See docs/queue-server.md.",
    ),
]
InflightLimitOpt = Annotated[
    int | None,
    typer.Option("--inflight-limit", help="Messages in flight per queue before a receive gets OverLimit (120000)."),
]
QueueUrlsOpt = Annotated[
    str | None,
    typer.Option(
        "--queue-urls",
        help="Queue URL form given out: region (http://HOST:PORT/queue/REGION/ACCOUNT/NAME, the default) or plain "
        "(http://HOST:PORT/ACCOUNT/NAME, as moto); both are accepted (or SCTE_QUEUE_URLS).",
    ),
]
AccessKeyOpt = Annotated[
    list[str] | None,
    typer.Option("--access-key", help="AKID:SECRET accepted by --auth strict (repeatable; or SCTE_QUEUE_ACCESS_KEYS)."),
]


def _serve(
    host: str | None,
    port: int | None,
    data: Path | None,
    account_id: str | None,
    region: str | None,
    durability: str | None,
    test_mode: bool | None,
    log_level: str,
    auth: str | None = None,
    access_keys: list[str] | None = None,
    inflight_limit: int | None = None,
    credentials: Path | None = None,
    queue_urls: str | None = None,
) -> None:
    from scte.queue.server.config import ServerConfig, parse_access_keys
    from scte.queue.server.credentials import CredentialsError
    from scte.queue.server.serve import serve

    try:
        config = ServerConfig.from_env(
            host=host,
            port=port,
            data_dir=data,
            account_id=account_id,
            region=region,
            durability=durability,
            test_mode=test_mode,
            auth=auth,
            access_keys=parse_access_keys(access_keys) if access_keys else None,
            inflight_limit=inflight_limit,
            credentials_file=credentials,
            queue_urls=queue_urls,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    typer.echo(
        f"scte queue: SQS endpoint http://{shown_host}:{config.port} "
        f"(account {config.account_id}, region {config.region}, data {config.data_dir})"
        + (" [test mode]" if config.test_mode else "")
        + (" [auth strict]" if config.auth == "strict" else ""),
        err=True,
    )
    try:
        serve(config, log_level=log_level)
    except CredentialsError as exc:
        raise typer.BadParameter(str(exc)) from None


@queue_app.command("serve")
def queue_serve(
    host: HostOpt = None,
    port: PortOpt = None,
    data: DataOpt = None,
    account_id: AccountOpt = None,
    region: RegionOpt = None,
    durability: DurabilityOpt = None,
    test_mode: TestModeOpt = None,
    log_level: LogLevelOpt = "info",
    auth: AuthOpt = None,
    access_key: AccessKeyOpt = None,
    inflight_limit: InflightLimitOpt = None,
    credentials: CredentialsOpt = None,
    queue_urls: QueueUrlsOpt = None,
) -> None:
    """Serve the broker over the SQS JSON and query protocols."""
    _serve(
        host,
        port,
        data,
        account_id,
        region,
        durability,
        test_mode,
        log_level,
        auth,
        access_key,
        inflight_limit,
        credentials,
        queue_urls,
    )


PlatformDataOpt = Annotated[
    Path | None, typer.Option("--data", help="Directory of all the platform's data (default ./var; SCTE_DATA_DIR).")
]


@app.command("up")
def up(
    data: PlatformDataOpt = None,
    seed: Annotated[bool, typer.Option("--seed/--no-seed", help="Load the seed data on the first start.")] = True,
    test_clock: Annotated[
        bool, typer.Option("--test-clock", help="Let <data>/clock-offset (seconds) move every service's clock.")
    ] = False,
    log_level: LogLevelOpt = "info",
    replicas: Annotated[
        str | None,
        typer.Option(
            "--replicas",
            metavar="SERVICE=N,...",
            help="Run N processes of a service, competing consumers of its queue (e.g. notifications=3,search=2);"
            " replica 0 serves its API.",
        ),
    ] = None,
    broker: Annotated[
        str,
        typer.Option(
            "--broker",
            envvar="SCTE_BROKER",
            help="embedded: the platform's own broker, started here (default); URL: any SQS/SNS endpoint "
            "(moto_server, LocalStack); aws: AWS with the SDK's default credentials and region. Outside the "
            "embedded broker the services check the deployed topology and never create it.",
        ),
    ] = "embedded",
    database: Annotated[
        str,
        typer.Option(
            "--database",
            envvar="SCTE_DATABASE",
            help="sqlite: a file per service in the data directory (default); postgresql://USER@HOST:PORT/BASE: "
            "a database per service, BASE_<service>, created and migrated on first start.",
        ),
    ] = "sqlite",
    provision: Annotated[
        bool,
        typer.Option(
            "--provision",
            help="With --broker URL or aws: create or update the topology first (a development broker such "
            "as moto_server; AWS is deployed from `scte deploy cloudformation`).",
        ),
    ] = False,
    gateway_port: Annotated[
        int | None,
        typer.Option(
            "--gateway-port", min=1, max=65535, help="Port of the gateway: website and APIs (SCTE_GATEWAY_PORT; 8000)."
        ),
    ] = None,
    broker_port: Annotated[
        int | None,
        typer.Option("--broker-port", min=1, max=65535, help="Port of the SQS/SNS broker (SCTE_BROKER_PORT; 9324)."),
    ] = None,
    mail_port: Annotated[
        int | None,
        typer.Option("--mail-port", min=1, max=65535, help="Port of the local mail server (SCTE_SMTP_PORT; 1025)."),
    ] = None,
    port_base: Annotated[
        int | None,
        typer.Option(
            "--port-base",
            min=1,
            max=65523,
            help="Put all 13 ports in a row from this one: gateway, broker, mail, then the ten services "
            "(instead of their SCTE_*_PORT variables); the three flags above still win.",
        ),
    ] = None,
) -> None:
    """Start the system: broker, mail server, every service, the gateway; Ctrl-C stops it all."""
    import os

    from scte.kit.switches import parse_broker, parse_database
    from scte.platform import SERVICES
    from scte.supervision.replicas import ReplicasError, parse_replicas
    from scte.up import PortError, resolve_ports
    from scte.up import up as run_up

    try:
        counts = parse_replicas(replicas, SERVICES)
    except ReplicasError as exc:
        typer.echo(f"scte up: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        broker = parse_broker(broker)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--broker'") from None
    try:
        database = parse_database(database)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--database'") from None
    if provision and broker == "embedded":
        raise typer.BadParameter("the embedded broker is always provisioned by `scte up`", param_hint="'--provision'")
    directory = data or Path(os.environ.get("SCTE_DATA_DIR", "./var"))
    try:
        ports = resolve_ports(gateway=gateway_port, broker=broker_port, mail=mail_port, base=port_base)
    except PortError as exc:
        raise typer.BadParameter(str(exc)) from None
    raise typer.Exit(
        run_up(
            directory,
            seed=seed,
            test_clock=test_clock,
            log_level=log_level,
            replicas=counts,
            broker=broker,
            database=database,
            provision=provision,
            ports=ports,
        )
    )


@app.command("status")
def status(
    data: PlatformDataOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON instead of a table.")] = False,
) -> None:
    """What runs, where, and whether it is healthy. Exit status: 0 up and healthy, 1 not running,
    2 running with a part down or failing its health check."""
    import json
    import os

    from scte.supervision.status import print_status, read_status

    directory = data or Path(os.environ.get("SCTE_DATA_DIR", "./var"))
    report = read_status(directory)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        print_status(report)
    raise typer.Exit(report.exit_code)


@app.command("down")
def down(
    data: PlatformDataOpt = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for `scte up` to stop its children.")
    ] = 90.0,
) -> None:
    """Stop the `scte up` running on a data directory (and any child of it left running)."""
    import os

    from scte.supervision.instance import stop_instance

    directory = data or Path(os.environ.get("SCTE_DATA_DIR", "./var"))
    report = stop_instance(directory, timeout=timeout)
    if report.supervisor is None and not report.leftovers:
        typer.echo(f"no scte up running on {directory}", err=True)
        return
    if report.supervisor is not None:
        state = "stopped" if report.stopped else f"did not stop within {timeout:.0f} s"
        typer.echo(f"scte up (pid {report.supervisor}) {state}", err=True)
    if report.leftovers:
        names = ", ".join(f"{name} ({pid})" for name, pid in sorted(report.leftovers.items()))
        typer.echo(f"stopped children left running: {names}", err=True)
    if report.killed:
        typer.echo(f"killed (did not stop on SIGTERM): {', '.join(sorted(report.killed))}", err=True)
    if report.supervisor is not None and not report.stopped:
        raise typer.Exit(1)


@app.command("seed")
def seed_command(
    data: PlatformDataOpt = None,
    gateway: Annotated[str, typer.Option("--gateway", help="The running gateway.")] = "http://127.0.0.1:8000",
    members: Annotated[int, typer.Option("--members", min=0, help="How many members to generate.")] = 300,
) -> None:
    """Load the demonstration data into a running platform (`scte up` does it on the first start)."""
    import asyncio
    import os

    from scte.seed import seed

    directory = data or Path(os.environ.get("SCTE_DATA_DIR", "./var"))
    report = asyncio.run(seed(gateway, directory, members=members))
    typer.echo(f"seeded {report.members} members, {report.courses} courses, {report.companies} companies")
    for skipped in report.skipped:
        typer.echo(f"skipped: {skipped}", err=True)


@admin_app.command("create-staff")
def admin_create_staff(
    email: Annotated[str, typer.Argument(help="The new staff member's e-mail address (their sign-in name).")],
    name: Annotated[str, typer.Option("--name", help="Their display name.")] = "SCTE Staff",
    data: PlatformDataOpt = None,
) -> None:
    """Create a staff account with a random password, shown once."""
    import asyncio
    import os

    from scte.admin import AdminError, create_staff

    directory = data or Path(os.environ.get("SCTE_DATA_DIR", "./var"))
    try:
        account = asyncio.run(create_staff(directory, email, name))
    except AdminError as exc:
        typer.echo(f"scte admin: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"staff account {account.email} created; password (shown once, not stored): {account.password}")


@admin_app.command("reset-password")
def admin_reset_password(
    email: Annotated[str, typer.Argument(help="The account's e-mail address.")],
    data: PlatformDataOpt = None,
) -> None:
    """Give an account a new random password, shown once (the old one stops working)."""
    import asyncio
    import os

    from scte.admin import AdminError, reset_password

    directory = data or Path(os.environ.get("SCTE_DATA_DIR", "./var"))
    try:
        account = asyncio.run(reset_password(directory, email))
    except AdminError as exc:
        typer.echo(f"scte admin: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"new password for {account.email} (shown once, not stored): {account.password}")


@admin_app.command("rotate-broker-key")
def admin_rotate_broker_key(
    service: Annotated[str, typer.Argument(help="The service (or `admin`, scte up's own key) to give a new key.")],
    data: PlatformDataOpt = None,
    grace: Annotated[
        int, typer.Option("--grace", min=0, max=86_400, help="Seconds the old key keeps working (default 600).")
    ] = 600,
) -> None:
    """Give a service a new broker key; the old one keeps working for --grace seconds, then is refused.

    A running `scte up` takes it up by itself: the broker and the service read their files again when they
    change. The key is written to the service's file (mode 600) and never printed."""
    import datetime
    import os

    from scte.deploy.broker_keys import rotate
    from scte.queue.server.config import DEFAULT_ACCOUNT_ID

    directory = data or Path(os.environ.get("SCTE_DATA_DIR", "./var"))
    try:
        fresh = rotate(directory, service, DEFAULT_ACCOUNT_ID, grace=grace)
    except LookupError as exc:
        raise typer.BadParameter(str(exc)) from None
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=grace)
    typer.echo(
        f"{service}: new broker key {fresh.access_key_id} in place; "
        f"the previous key is refused from {until:%Y-%m-%d %H:%M:%S} UTC"
    )


@contracts_app.command("asyncapi")
def contracts_asyncapi(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")] = None,
    topology: Annotated[
        str | None,
        typer.Option(
            "--topology",
            help="Import path of a Topology (module:ATTR, or a function returning one); default the whole "
            "platform, scte.platform:topology.",
        ),
    ] = None,
    registry: Annotated[
        str, typer.Option("--registry", help="Import path of the EventRegistry (module:ATTR).")
    ] = "scte.bus.contracts:registry",
    title: Annotated[str, typer.Option("--title", help="info.title of the document.")] = "SCTE Platform events",
) -> None:
    """Print the AsyncAPI 3.1 document (JSON) of the platform's (or a) topology and the registered events."""
    import json

    from scte.bus.asyncapi import asyncapi_document, import_contracts, load_object, load_topology
    from scte.bus.contracts import EventRegistry

    try:
        import_contracts()
        topo = load_topology(topology)
        events = load_object(registry)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    if not isinstance(events, EventRegistry):
        raise typer.BadParameter(f"{registry} is not an EventRegistry")
    text = json.dumps(asyncapi_document(topo, events, title=title), indent=2, sort_keys=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@app.command("run")
def run_service(
    target: Annotated[
        str, typer.Argument(help="The service to run: module:ATTR (a scte.bus Service), e.g. mymodule:service.")
    ],
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="inprocess (the broker engine in this process), http://HOST:PORT (the embedded broker or any "
            "SQS/SNS endpoint) or aws (or SCTE_BUS_BROKER; default inprocess).",
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option("--database", help="The service's database URL (or SCTE_BUS_DATABASE; default ./NAME.db)."),
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Directory of the default database and broker files (default .).")
    ] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Prefix of queue and topic names.")] = None,
    provision: Annotated[
        bool | None,
        typer.Option("--provision/--no-provision", help="Create the topics, queue and subscriptions at start."),
    ] = None,
) -> None:
    """Run a service declared with scte.bus.service.Service until SIGTERM or Ctrl-C."""
    import sys

    from scte.bus.asyncapi import load_object
    from scte.bus.service import BusConfig, Service

    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, "")  # `scte run mymodule:service` finds mymodule.py in the current directory
    try:
        service = load_object(target)
    except (ImportError, AttributeError, ValueError) as exc:
        raise typer.BadParameter(f"cannot load {target!r}: {exc}", param_hint="TARGET") from None
    if not isinstance(service, Service):
        raise typer.BadParameter(
            f"{target} is a {type(service).__name__}, not a scte.bus.service.Service", param_hint="TARGET"
        )
    options: dict[str, object] = {
        "broker": broker,
        "database": database,
        "data_dir": data,
        "prefix": prefix,
        "provision": provision,
    }
    given: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    try:
        BusConfig.from_env(**given)  # refused here, with the option's message, before anything starts
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    service.run(**given)


@deploy_app.command("cloudformation")
def deploy_cloudformation(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")] = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Prefix of topic, queue and role names (the services' SCTE_QUEUE_PREFIX).")
    ] = "",
    notifications_lambda: Annotated[
        bool,
        typer.Option(
            "--notifications-lambda/--no-notifications-lambda",
            help="The notifications service's handlers as a Lambda function on its queue (default on).",
        ),
    ] = True,
) -> None:
    """Print the CloudFormation template (JSON) of the platform: every topic, queue, dead-letter queue,
    subscription and queue policy of the topology, and one least-privilege IAM role per service."""
    import json

    from scte.deploy.cloudformation import platform_template

    try:
        document = platform_template(prefix=prefix, lambda_notifications=notifications_lambda)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@deploy_app.command("lambda")
def deploy_lambda(
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the zip to.")] = Path("build"),
    dependencies: Annotated[
        str,
        typer.Option(
            "--dependencies",
            help="pip: install them from PyPI for the Lambda runtime (default); local: copy this environment's "
            "(runs here, for local invocation); none: leave them out (a layer brings them; see requirements.txt).",
        ),
    ] = "pip",
    python_version: Annotated[
        str, typer.Option("--python-version", help="Python of the Lambda runtime (with --dependencies pip).")
    ] = "3.13",
) -> None:
    """Build the notifications service's Lambda package: a zip of the handler, the scte package and its
    dependencies (handler scte.deploy.lambda_notifications.handler)."""
    from scte.deploy.lambda_package import PackageError, build

    try:
        built = build(output, dependencies=dependencies, python_version=python_version)
    except PackageError as exc:
        typer.echo(f"scte deploy lambda: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {built.zip_path} ({built.size_bytes / 1e6:.1f} MB, handler {built.handler})", err=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
