"""The parts of `scte.supervision` with real processes and files: a child started through the
launcher dies with its parent, even a parent killed with SIGKILL; the data directory is made private;
the environment written to processes.json holds no credential; one instance per data directory."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scte.supervision.datadir import public_environment, secure_data_dir
from scte.supervision.instance import AlreadyRunning, InstanceLock, process_started, stop_instance
from scte.supervision.launch import launcher_argv

SRC = Path(__file__).resolve().parents[3] / "src"


def _alive(pid: int) -> bool:
    return process_started(pid) is not None


def _wait_gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("through_launcher", [True, False])
def test_a_child_dies_with_its_parent_killed_by_sigkill(tmp_path: Path, through_launcher: bool) -> None:
    """The parent starts `sleep` (through the launcher or not), writes its pid, and is killed -9.
    Without the launcher the child is orphaned and lives on: the control that the test can fail."""
    pid_file = tmp_path / "child.pid"
    child = ["sleep", "300"]
    argv = f"launcher_argv({child!r})" if through_launcher else repr(child)
    parent_code = textwrap.dedent(
        f"""
        import subprocess, time
        from pathlib import Path
        from scte.supervision.launch import launcher_argv
        process = subprocess.Popen({argv}, start_new_session=True)
        Path({str(pid_file)!r}).write_text(str(process.pid))
        time.sleep(300)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=env)
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        child_pid = int(pid_file.read_text())
        time.sleep(0.5)  # the launcher has exec'd `sleep`
        assert _alive(child_pid)
        parent.kill()
        parent.wait()
        assert _wait_gone(child_pid, timeout=10 if through_launcher else 2) is through_launcher
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_the_launcher_refuses_to_start_a_child_whose_parent_is_gone() -> None:
    # parent pid 1 is not the launcher's parent (this test is): the child would have nobody to die with
    result = subprocess.run(launcher_argv(["true"], parent_pid=1), env={**os.environ, "PYTHONPATH": str(SRC)})
    assert result.returncode == 1


def test_secure_data_dir_makes_an_old_install_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "logs" / "members.log").write_text("x")
    (data / "members.db").write_text("x")
    os.chmod(data, 0o755)
    os.chmod(data / "logs", 0o775)
    os.chmod(data / "logs" / "members.log", 0o644)
    os.chmod(data / "members.db", 0o666)
    old = os.umask(0o022)
    try:
        assert secure_data_dir(data) == data.resolve()
        new_file = data / "new.db"
        new_file.write_text("x")
        (data / "newdir").mkdir()
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [data, *data.rglob("*")]}
    finally:
        os.umask(old)
    assert modes == {
        "data": 0o700,
        "logs": 0o700,
        "members.log": 0o600,
        "members.db": 0o600,
        "new.db": 0o600,
        "newdir": 0o700,
    }


def test_public_environment_leaves_credentials_out() -> None:
    env = {
        "SCTE_MEMBERS_PORT": "8101",
        "SCTE_DATA_DIR": "/srv/scte",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9324",
        "AWS_ACCESS_KEY_ID": "AKIA...",
        "AWS_SECRET_ACCESS_KEY": "s3cret",
        "AWS_SESSION_TOKEN": "tok",
        "SCTE_QUEUE_ACCESS_KEYS": "a:b",
        "SCTE_SMTP_PASSWORD": "pw",
        "SCTE_SEARCH_DATABASE_URL": "postgresql+asyncpg://scte:pw@db/scte",
        "SCTE_REPORTS_DATABASE_URL": "postgresql+asyncpg://db/scte",
    }
    assert public_environment(env, list(env)) == {
        "SCTE_MEMBERS_PORT": "8101",
        "SCTE_DATA_DIR": "/srv/scte",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9324",
        "SCTE_REPORTS_DATABASE_URL": "postgresql+asyncpg://db/scte",
    }


def test_one_instance_per_data_directory(tmp_path: Path) -> None:
    first, second = InstanceLock(tmp_path), InstanceLock(tmp_path)
    assert not InstanceLock.held(tmp_path)
    first.acquire()
    try:
        assert InstanceLock.held(tmp_path)
        with pytest.raises(AlreadyRunning):
            second.acquire()
    finally:
        first.release()
    assert not InstanceLock.held(tmp_path)
    second.acquire()
    second.release()


def test_stop_instance_with_nothing_running_signals_nobody(tmp_path: Path) -> None:
    # a registry left by a dead instance whose pids now belong to others (this test's own pid among them)
    run = tmp_path / "run"
    run.mkdir()
    me = os.getpid()
    registry = {"supervisor": me, "supervisor_started": 1, "children": {"x": {"pid": me, "started": 1}}}
    (run / "processes.json").write_text(json.dumps(registry))
    report = stop_instance(tmp_path, timeout=1, grace=1)
    assert report.supervisor is None and not report.leftovers and not report.killed
