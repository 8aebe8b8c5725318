"""The services' broker keys (`scte.deploy.broker_keys`): per install, private, rotated with a grace period."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from scte.deploy.broker_keys import ADMIN, broker_file, ensure_keys, identity_dir, read_key, rotate
from scte.queue.server.credentials import KeyStore

ACCOUNT = "123456789012"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_each_service_gets_its_own_private_key_once(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path, ["learning", "certification"], ACCOUNT)
    assert set(keys) == {ADMIN, "learning", "certification"}
    assert len({k.access_key_id for k in keys.values()}) == 3
    assert len({k.secret_access_key for k in keys.values()}) == 3
    assert keys["learning"].principal == f"arn:aws:iam::{ACCOUNT}:role/scte-learning"
    assert keys[ADMIN].admin and not keys["learning"].admin
    assert mode(identity_dir(tmp_path)) == 0o700
    for path in [broker_file(tmp_path), *identity_dir(tmp_path).iterdir()]:
        assert mode(path) == 0o600, path
    # a second start keeps them
    again = ensure_keys(tmp_path, ["learning", "certification"], ACCOUNT)
    assert again == keys
    # another install gets others
    other = ensure_keys(tmp_path / "other", ["learning"], ACCOUNT)
    assert other["learning"].access_key_id != keys["learning"].access_key_id


def test_the_broker_knows_every_key_with_its_principal(tmp_path: Path) -> None:
    keys = ensure_keys(tmp_path, ["learning"], ACCOUNT)
    store = KeyStore(ACCOUNT, path=broker_file(tmp_path))
    principal = store.principal(keys["learning"].access_key_id)
    assert principal is not None and principal.arn == keys["learning"].principal and not principal.admin
    assert store[keys["learning"].access_key_id] == keys["learning"].secret_access_key
    admin = store.principal(keys[ADMIN].access_key_id)
    assert admin is not None and admin.admin


def test_rotation_replaces_the_key_and_keeps_the_old_one_for_the_grace_period(tmp_path: Path) -> None:
    now = [1_000_000.0]
    keys = ensure_keys(tmp_path, ["learning", "media"], ACCOUNT)
    fresh = rotate(tmp_path, "learning", ACCOUNT, grace=600, clock=lambda: now[0])
    assert fresh.access_key_id != keys["learning"].access_key_id
    assert read_key(identity_dir(tmp_path) / "learning.json") == fresh
    assert read_key(identity_dir(tmp_path) / "media.json") == keys["media"]
    store = KeyStore(ACCOUNT, path=broker_file(tmp_path), clock=lambda: now[0])
    assert store.principal(fresh.access_key_id) is not None
    assert store.principal(keys["learning"].access_key_id) is not None  # within the grace period
    now[0] += 601
    assert store.principal(keys["learning"].access_key_id) is None
    assert store.principal(fresh.access_key_id) is not None
    assert mode(broker_file(tmp_path)) == 0o600
    # a start after the grace drops the retired key from the broker's file
    ensure_keys(tmp_path, ["learning", "media"], ACCOUNT, clock=lambda: now[0])
    ids = [e["access_key_id"] for e in json.loads(broker_file(tmp_path).read_text())["keys"]]
    assert keys["learning"].access_key_id not in ids and fresh.access_key_id in ids


def test_rotating_an_unknown_service_says_which_exist(tmp_path: Path) -> None:
    ensure_keys(tmp_path, ["learning"], ACCOUNT)
    with pytest.raises(LookupError, match="known: admin, learning"):
        rotate(tmp_path, "nobody", ACCOUNT)


def test_the_admin_command_rotates_without_printing_the_secret(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scte.cli import app

    keys = ensure_keys(tmp_path, ["learning"], ACCOUNT)
    result = CliRunner().invoke(app, ["admin", "rotate-broker-key", "learning", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    fresh = read_key(identity_dir(tmp_path) / "learning.json")
    assert fresh.access_key_id != keys["learning"].access_key_id
    assert fresh.access_key_id in result.output
    assert fresh.secret_access_key not in result.output and keys["learning"].secret_access_key not in result.output
    refused = CliRunner().invoke(app, ["admin", "rotate-broker-key", "nobody", "--data", str(tmp_path)])
    assert refused.exit_code != 0 and "nobody" in refused.output
