"""`scte up` as an operator uses it: start, work, Ctrl-C, start again on the same data.

Its own `scte up` (not the session's): its own data directory and free ports. Ctrl-C must stop
everything cleanly (exit status 0, no process of the platform left, every port free again), and the
restart must keep all data without seeding again.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from scte.kit.auth import TokenIssuer

from .conftest import STARTUP_TIMEOUT, launch_up, up_ports, wait_until_up
from .processes import alive, eventually, kill_leftover_children, port_free, processes_in_sessions

PASSWORD = "a long enough passphrase 42"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
STOP_TIMEOUT = 60.0
"""`scte up` gives each group of children 15 s after SIGTERM; a clean stop takes far less."""


def _ctrl_c_and_check_clean_stop(process: subprocess.Popen[bytes], data_dir: Path, log_path: Path) -> float:
    """SIGINT to `scte up`'s process group (what a terminal's Ctrl-C sends); the seconds it took to stop."""
    registry = json.loads((data_dir / "run" / "processes.json").read_text(encoding="utf-8"))
    children = {name: int(child["pid"]) for name, child in registry["children"].items()}
    ports = {name: int(child["port"]) for name, child in registry["children"].items()}
    ports["gateway"] = int(registry["gateway"].rsplit(":", 1)[1])
    assert {"broker", "mail", "gateway", "members"} <= set(children), children
    assert all(alive(pid) for pid in children.values()), "a child died before the stop"

    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    try:
        status = process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"scte up did not stop within {STOP_TIMEOUT} s:\n{log_path.read_text()[-3000:]}") from None
    took = time.monotonic() - started
    log = log_path.read_text()
    assert status == 0, f"scte up exited with {status}:\n{log[-3000:]}"
    assert "stopped." in log
    assert "killing it" not in log, log[-3000:]  # every child stopped on SIGTERM, none had to be killed

    still = {name: pid for name, pid in children.items() if alive(pid)}
    assert not still, f"children still alive after the stop: {still}"
    leftovers = processes_in_sessions({process.pid, *children.values()})
    assert not leftovers, f"processes of the platform left behind: {leftovers}"
    busy = {name: port for name, port in ports.items() if not port_free(port)}
    assert not busy, f"ports still in use after the stop: {busy}"
    return took


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 60, 10)).save(buffer, "JPEG")
    return buffer.getvalue()


def _member_total(url: str, data_dir: Path) -> int:
    token = TokenIssuer.from_file(data_dir / "keys" / "jwt-ed25519.pem").issue("e2e-staff", ("member", "staff"))
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as staff:
        r = staff.get("/api/members/members", params={"limit": 1})
        assert r.status_code == 200, r.text
        return int(r.json()["total"])


def _sign_in(client: httpx.Client, email: str) -> str:
    r = client.post("/api/members/sessions", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _records(client: httpx.Client, member_id: str, media_id: str) -> dict[str, Any]:
    """What the member sees of their own data, across members, commerce and media."""
    me = client.get("/api/members/me")
    membership = client.get(f"/api/members/members/{member_id}/membership")
    orders = client.get(f"/api/commerce/members/{member_id}/orders")
    media = client.get(f"/api/media/media/{media_id}")
    for r in (me, membership, orders, media):
        assert r.status_code == 200, r.text
    thumb = client.get(f"/api/media/media/{media_id}/renditions/thumb")
    assert thumb.status_code == 200, thumb.text
    return {
        "me": me.json(),
        "membership": membership.json(),
        "orders": orders.json(),
        "media": media.json(),
        "thumb": thumb.content,
    }


@pytest.mark.timeout(2 * STARTUP_TIMEOUT + 360)  # two starts of scte up
def test_ctrl_c_stops_everything_and_a_restart_keeps_all_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = up_ports()
    url = f"http://127.0.0.1:{ports['gateway']}"
    first_log, second_log = tmp_path / "up-1.log", tmp_path / "up-2.log"
    process = launch_up(data_dir, ports, first_log, new_session=True)
    try:
        wait_until_up(process, data_dir, first_log, url)
        assert "first start: loading the seed data" in first_log.read_text()
        assert "✓ mail and 10 services ready (migrated)" in first_log.read_text()  # the long steps, reported
        assert "✓ seed data loaded" in first_log.read_text()
        marker = (data_dir / ".seeded").read_bytes()
        email = f"{uuid.uuid4().hex[:10]}@e2e.example"

        # data in several services: a member (members), dues paid (commerce -> members), an upload (media)
        with httpx.Client(base_url=url, timeout=30) as anonymous:
            created = anonymous.post(
                "/api/members/members", json={"email": email, "password": PASSWORD, "display_name": "Rita Restart"}
            )
            assert created.status_code == 201, created.text
            member_id = str(created.json()["id"])
            token = _sign_in(anonymous, email)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            order = client.post("/api/commerce/orders", json={"lines": [{"kind": "dues"}]})
            assert order.status_code == 201, order.text
            paid = client.post(f"/api/commerce/orders/{order.json()['order_id']}/pay", json={"card": CARD})
            assert paid.status_code == 200, paid.text
            upload = client.post(
                "/api/media/media", files={"file": ("rack.jpg", _jpeg(), "image/jpeg")}, data={"title": "Rack"}
            )
            assert upload.status_code == 201, upload.text
            media_id = str(upload.json()["media_id"])
            eventually(
                lambda: client.get("/api/members/me").json()["status"] == "active",
                "dues paid -> member active",
            )
            eventually(
                lambda: client.get(f"/api/media/media/{media_id}").json()["status"] == "processed",
                "upload processed",
            )
            before = _records(client, member_id, media_id)
        assert before["me"]["status"] == "active"
        assert [o["order_id"] for o in before["orders"]] == [order.json()["order_id"]]
        total = _member_total(url, data_dir)

        _ctrl_c_and_check_clean_stop(process, data_dir, first_log)

        # the same data directory, the same ports
        process = launch_up(data_dir, ports, second_log, new_session=True)
        wait_until_up(process, data_dir, second_log, url)
        assert "first start" not in second_log.read_text()  # the .seeded marker is respected
        assert (data_dir / ".seeded").read_bytes() == marker
        assert _member_total(url, data_dir) == total

        with httpx.Client(base_url=url, timeout=30) as anonymous:
            token = _sign_in(anonymous, email)  # the password hash survived
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            after = _records(client, member_id, media_id)
        assert after == before

        _ctrl_c_and_check_clean_stop(process, data_dir, second_log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        kill_leftover_children(data_dir)
