"""The `scte` command line without a running platform: `scte up`'s port flags and their refusals,
`scte status` when nothing runs, and shell completion. The flags on a real `scte up` are in
tests/e2e/test_up_cli.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scte.cli import app
from scte.platform import SERVICES
from scte.up import PORT_NAMES, PortError, Supervisor, resolve_ports

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"


def test_ports_default_to_the_platform_and_the_variables() -> None:
    ports = resolve_ports(environ={})
    assert ports["gateway"] == 8000 and ports["broker"] == 9324 and ports["smtp"] == 1025
    assert [ports[name] for name in SERVICES] == [info.port for info in SERVICES.values()]
    moved = resolve_ports(environ={"SCTE_GATEWAY_PORT": "18000", "SCTE_SEARCH_PORT": "18110"})
    assert moved["gateway"] == 18000 and moved["search"] == 18110 and moved["broker"] == 9324


def test_flags_win_over_the_base_and_the_base_over_the_variables() -> None:
    ports = resolve_ports(base=20000, environ={"SCTE_MEMBERS_PORT": "18101"})
    assert [ports[name] for name in PORT_NAMES] == list(range(20000, 20013))
    assert ports["members"] == 20003
    ports = resolve_ports(gateway=30000, broker=30001, mail=30002, base=20000, environ={"SCTE_GATEWAY_PORT": "1"})
    assert (ports["gateway"], ports["broker"], ports["smtp"]) == (30000, 30001, 30002)
    assert ports["members"] == 20003


@pytest.mark.parametrize(
    ("kwargs", "environ", "names"),
    [
        ({"gateway": 9324}, {}, "--broker-port or SCTE_BROKER_PORT"),  # the broker's default
        ({"mail": 8101}, {}, "SCTE_MEMBERS_PORT"),
        ({}, {"SCTE_SEARCH_PORT": "8000"}, "SCTE_SEARCH_PORT"),
        ({}, {"SCTE_SEARCH_PORT": "http"}, "SCTE_SEARCH_PORT='http' is not a port"),
        ({}, {"SCTE_SMTP_PORT": "70000"}, "SCTE_SMTP_PORT='70000' is not a port"),
        ({"base": 65530}, {}, "--port-base 65530"),
        ({"base": 0}, {}, "--port-base 0"),
    ],
)
def test_ports_that_cannot_work_are_refused_by_name(
    kwargs: dict[str, int], environ: dict[str, str], names: str
) -> None:
    with pytest.raises(PortError) as refused:
        resolve_ports(**kwargs, environ=environ)
    assert names in str(refused.value)


def test_the_supervisor_gives_every_child_its_port(tmp_path: Path) -> None:
    ports = resolve_ports(base=21000, environ={})
    supervisor = Supervisor(tmp_path, ports=ports)
    assert (supervisor.gateway_port, supervisor.broker_port, supervisor.smtp_port) == (21000, 21001, 21002)
    assert supervisor.env["SCTE_GATEWAY_PORT"] == "21000"
    assert supervisor.env["SCTE_SMTP_PORT"] == "21002"
    assert supervisor.env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:21001"
    assert supervisor.env["SCTE_SEARCH_PORT"] == str(21000 + PORT_NAMES.index("search"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gateway-port", "0"], "--gateway-port"),
        (["--gateway-port", "65536"], "--gateway-port"),
        (["--broker-port", "nine"], "--broker-port"),
        (["--mail-port", "-5"], "--mail-port"),
        (["--port-base", "65524"], "--port-base"),
        (["--port-base", "x"], "--port-base"),
        (["--gateway-port", "9000", "--broker-port", "9000"], "would both listen on 9000"),
        (["--ports", "9000"], "No such option"),
    ],
)
def test_bad_port_flags_stop_scte_up_before_it_starts(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["up", "--data", str(tmp_path / "data"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_busy_port_names_the_flag_or_variable_that_moves_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        base = _free_block(len(PORT_NAMES), avoid=busy)
        result = runner.invoke(
            app,
            [
                "up",
                "--data",
                str(tmp_path / "data"),
                "--port-base",
                str(base),
                "--gateway-port",
                str(busy),
                "--no-seed",
            ],
        )
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert f"gateway {busy} (change: --gateway-port or SCTE_GATEWAY_PORT)" in output
    assert "--port-base" in output
    assert (
        not (tmp_path / "data" / "run" / "processes.json").exists()
        or json.loads((tmp_path / "data" / "run" / "processes.json").read_text())["children"] == {}
    )


def _free_block(count: int, avoid: int) -> int:
    """A base with `count` free ports in a row (none of them `avoid`)."""
    for base in range(42000, 60000, 97):
        if avoid in range(base, base + count):
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError("no block of free ports")


def test_status_when_nothing_runs(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert "not up" in result.output and "no scte up running" in result.output
    result = runner.invoke(app, ["status", "--data", str(tmp_path), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) | {"data_dir": ""} == {
        "data_dir": "",
        "running": False,
        "supervisor": None,
        "gateway": None,
        "parts": [],
        "message": f"no scte up running on {tmp_path.resolve()} (`scte up --data {tmp_path.resolve()}` starts it)",
        "healthy": False,
    }
    assert runner.invoke(app, ["status", "--data", str(tmp_path), "--format", "json"]).exit_code == 2


def _scte(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    scte = shutil.which("scte", path=str(Path(sys.executable).parent))
    assert scte is not None, "the scte script (pip install -e .)"
    environment = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    return subprocess.run([scte, *args], capture_output=True, text=True, env=environment, timeout=120, check=False)


def test_shell_completion_script_and_answers() -> None:
    shown = _scte("--show-completion", env={"SHELL": "/bin/bash"})
    assert shown.returncode == 0, shown.stderr
    assert "_SCTE_COMPLETE=complete_bash" in shown.stdout and "complete " in shown.stdout
    # what bash asks when the user presses Tab after `scte sta`, and after `scte up --port`
    asked = _scte(env={"_SCTE_COMPLETE": "complete_bash", "COMP_WORDS": "scte sta", "COMP_CWORD": "1"})
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.split() == ["status"]
    asked = _scte(env={"_SCTE_COMPLETE": "complete_bash", "COMP_WORDS": "scte up --port", "COMP_CWORD": "2"})
    assert asked.stdout.split() == ["--port-base"]
    asked = _scte(env={"_SCTE_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "scte contracts a"})
    assert "asyncapi" in asked.stdout
    refused = _scte("statu")
    assert refused.returncode == 2 and "No such command" in refused.stderr
