"""`scte up` supervises its children: a crashed service is started again, with the same port and data;
no child outlives it (Ctrl-C with the output piped, kill -9); `scte down` stops it; its data at rest is
private and holds no secret of the environment."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from scte.up import _http_ok as _healthy
from scte.web.mail import read_messages

from .conftest import Platform, launch_up, scte_env, up_ports, wait_until_up
from .processes import alive, eventually, kill_leftover_children, port_free, processes_in_sessions, registry_of


def test_a_crashed_service_is_restarted(platform: Platform) -> None:
    before = platform.registry()["children"]["reports"]
    old_pid = int(before["pid"])
    assert _healthy(before["health"])
    os.kill(old_pid, signal.SIGKILL)  # a crash: no clean exit
    deadline = time.monotonic() + 60
    new_pid = old_pid
    while time.monotonic() < deadline:
        new_pid = int(platform.registry()["children"]["reports"]["pid"])
        if new_pid != old_pid and _healthy(before["health"]):
            break
        time.sleep(0.2)
    assert new_pid != old_pid, "the supervisor did not start reports again"
    assert _healthy(before["health"]), "reports was started again but is not healthy"


# -- children never outlive `scte up`; `scte down`; the data directory at rest ------------------------------

STOP_TIMEOUT = 60.0
"""`scte up` gives each group of children 15 s after SIGTERM; so does a child whose parent died."""


def _start(tmp_path: Path, **options: Any) -> tuple[subprocess.Popen[bytes], Path, Path, str]:
    data_dir = tmp_path / "data"
    ports = up_ports()
    log_path = tmp_path / "up.log"
    process = launch_up(data_dir, ports, log_path, new_session=True, seed=False, **options)
    url = f"http://127.0.0.1:{ports['gateway']}"
    try:
        wait_until_up(process, data_dir, log_path, url, seeded=False)
    except BaseException:
        _clean_up(process, data_dir)
        raise
    return process, data_dir, log_path, url


def _children_and_ports(data_dir: Path) -> tuple[dict[str, int], dict[str, int]]:
    registry = registry_of(data_dir)
    children = {name: int(child["pid"]) for name, child in registry["children"].items()}
    ports = {name: int(child["port"]) for name, child in registry["children"].items()}
    ports["gateway"] = int(registry["gateway"].rsplit(":", 1)[1])
    assert {"broker", "mail", "gateway", "members", "media"} <= set(children), children
    assert all(alive(pid) for pid in children.values()), "a child died before the test"
    return children, ports


def _assert_all_gone(children: dict[str, int], ports: dict[str, int], sessions: set[int]) -> None:
    def gone() -> bool:
        return not any(alive(pid) for pid in children.values()) and all(port_free(p) for p in ports.values())

    eventually(gone, "every child gone and every port free", timeout=STOP_TIMEOUT)
    leftovers = processes_in_sessions(sessions | set(children.values()))
    assert not leftovers, f"processes of the platform left behind: {leftovers}"


def _clean_up(process: subprocess.Popen[bytes], data_dir: Path) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    kill_leftover_children(data_dir)


def test_ctrl_c_with_the_output_piped_leaves_no_child(tmp_path: Path) -> None:
    """`scte up 2>&1 | tee up.log`, then Ctrl-C: the terminal's SIGINT reaches tee too, so the
    supervisor's next line meets a broken pipe; it must still stop every child."""
    process, data_dir, _log, _url = _start(tmp_path, piped=True)
    try:
        children, ports = _children_and_ports(data_dir)
        os.killpg(process.pid, signal.SIGINT)
        process.wait(STOP_TIMEOUT)
        _assert_all_gone(children, ports, {process.pid})
    finally:
        _clean_up(process, data_dir)


def test_kill_9_of_the_supervisor_leaves_no_child(tmp_path: Path) -> None:
    process, data_dir, _log, _url = _start(tmp_path)
    try:
        children, ports = _children_and_ports(data_dir)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)
        _assert_all_gone(children, ports, {process.pid})
    finally:
        _clean_up(process, data_dir)


def _scte(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scte.cli", *args], env=scte_env(), capture_output=True, text=True, timeout=180
    )


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_data_at_rest_is_private_and_holds_no_secret_of_the_environment(tmp_path: Path) -> None:
    """An older install left the directory 0755 and a log 0644; secrets sit in the environment of
    `scte up`. After a start and some traffic (a database row, a mail, an upload and its renditions):
    the directory is 0700, nothing in it is readable by group or others, no file holds a secret.
    Then a second `scte up` on the same directory is refused, and `scte down` stops the first."""
    data_dir = tmp_path / "data"
    (data_dir / "logs").mkdir(parents=True)
    os.chmod(data_dir, 0o755)
    old_log = data_dir / "logs" / "old.log"
    old_log.write_text("from an older install\n")
    os.chmod(old_log, 0o644)
    canaries = {
        "AWS_SECRET_ACCESS_KEY": f"canary-aws-{uuid.uuid4().hex}",
        "SCTE_SMTP_PASSWORD": f"canary-smtp-{uuid.uuid4().hex}",
        "SCTE_ADMIN_TOKEN": f"canary-token-{uuid.uuid4().hex}",
    }
    process, data_dir, _log, url = _start(tmp_path, env=canaries)
    try:
        email = f"{uuid.uuid4().hex[:10]}@e2e.example"
        with httpx.Client(base_url=url, timeout=30) as anonymous:
            created = anonymous.post(
                "/api/members/members",
                json={"email": email, "password": "a long enough passphrase 42", "display_name": "Dora Data"},
            )
            assert created.status_code == 201, created.text
            signed_in = anonymous.post(
                "/api/members/sessions", json={"email": email, "password": "a long enough passphrase 42"}
            )
            assert signed_in.status_code == 200, signed_in.text
            token = signed_in.json()["access_token"]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            upload = client.post("/api/media/media", files={"file": ("a.jpg", _jpeg(), "image/jpeg")})
            assert upload.status_code == 201, upload.text
            media_id = upload.json()["media_id"]
            eventually(
                lambda: client.get(f"/api/media/media/{media_id}").json()["status"] == "processed", "upload processed"
            )
        eventually(lambda: read_messages(data_dir, email), "a mail to the new member")

        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        readable: list[str] = []
        holding: list[str] = []
        files = 0
        for path in [data_dir, *data_dir.rglob("*")]:
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode & 0o077:
                readable.append(f"{path.relative_to(data_dir)} {mode:o}")
            if path.is_file():
                files += 1
                content = path.read_bytes()
                holding += [f"{path.relative_to(data_dir)}: {n}" for n, v in canaries.items() if v.encode() in content]
        assert files >= 10  # databases, logs, the mailbox, the keys, the upload and its renditions
        assert not readable, f"readable by group or others: {readable}"
        assert not holding, f"secrets of the environment written to: {holding}"
        assert stat.S_IMODE((data_dir / "mail" / "mail.db").stat().st_mode) == 0o600
        assert stat.S_IMODE((data_dir / "members.db").stat().st_mode) == 0o600

        second = _scte("up", "--data", str(data_dir), "--no-seed")
        assert second.returncode == 1 and "another `scte up` is running" in second.stderr, second.stderr

        children, ports = _children_and_ports(data_dir)
        down = _scte("down", "--data", str(data_dir))
        assert down.returncode == 0, down.stderr
        assert f"scte up (pid {process.pid}) stopped" in down.stderr
        assert process.wait(STOP_TIMEOUT) == 0
        _assert_all_gone(children, ports, {process.pid})
        again = _scte("down", "--data", str(data_dir))
        assert again.returncode == 0 and "no scte up running" in again.stderr
    finally:
        _clean_up(process, data_dir)
