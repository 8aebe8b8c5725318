"""The `scte` command: `scte up`, `scte queue serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="SCTE Platform.")
queue_app = typer.Typer(no_args_is_help=True, help="The SQS-compatible broker.")
app.add_typer(queue_app, name="queue")

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
LogLevelOpt = Annotated[str, typer.Option("--log-level", help="uvicorn log level.")]


def _serve(
    host: str | None,
    port: int | None,
    data: Path | None,
    account_id: str | None,
    region: str | None,
    durability: str | None,
    test_mode: bool | None,
    log_level: str,
) -> None:
    from scte.queue.server.config import ServerConfig
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
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    typer.echo(
        f"scte queue: SQS endpoint http://{shown_host}:{config.port} "
        f"(account {config.account_id}, region {config.region}, data {config.data_dir})"
        + (" [test mode]" if config.test_mode else ""),
        err=True,
    )
    serve(config, log_level=log_level)


@queue_app.command("serve")
def queue_serve(
    host: HostOpt = None,
    port: PortOpt = None,
    data: DataOpt = None,
    account_id: AccountOpt = None,
    region: RegionOpt = None,
    durability: DurabilityOpt = None,
    test_mode: TestModeOpt = None,
    log_level: LogLevelOpt = "warning",
) -> None:
    """Serve the broker over the SQS JSON and query protocols."""
    _serve(host, port, data, account_id, region, durability, test_mode, log_level)


@app.command("up")
def up(
    host: HostOpt = None,
    port: PortOpt = None,
    data: DataOpt = None,
    log_level: LogLevelOpt = "warning",
) -> None:
    """Start the system (for now: the broker, as `scte queue serve`)."""
    _serve(host, port, data, None, None, None, None, log_level)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
