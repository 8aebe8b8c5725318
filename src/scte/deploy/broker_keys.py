"""The services' broker keys: one access key per service and one for the owner (admin), per install.

Each lives in its own file, `<data>/keys/broker/<name>.json` (mode 0600, the directory 0700), which only
the process that uses it is told the path of; the broker reads all of them from `<data>/keys/broker.json`
(its `--credentials` file). Keys are generated with `secrets` on the first `scte up`, never printed, and
never put in the environment of a process (which `processes.json` and `/proc` would show): a service is
given the directory (`SCTE_BROKER_IDENTITY_DIR`) and reads `<name>.json` from it.

Rotation (`scte admin rotate-broker-key SERVICE`): a new key replaces the service's file; in the broker's
file the new key is added and the old one kept until `ROTATION_GRACE_SECONDS` from now. A running service
reads its file again when it changes (`scte.bus.transports.aws`), the broker its own (within a second), so
the switch costs no refused call, and the old key stops working when the grace ends.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ADMIN",
    "ROTATION_GRACE_SECONDS",
    "BrokerKey",
    "broker_file",
    "ensure_keys",
    "identity_dir",
    "read_key",
    "rotate",
]

ADMIN = "admin"
ROTATION_GRACE_SECONDS = 600


@dataclass(frozen=True)
class BrokerKey:
    name: str
    access_key_id: str
    secret_access_key: str
    principal: str
    admin: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "principal": self.principal,
            "admin": self.admin,
        }


def identity_dir(data_dir: Path) -> Path:
    """Where each service's key file is (`<name>.json`)."""
    return data_dir / "keys" / "broker"


def broker_file(data_dir: Path) -> Path:
    """The broker's credentials file (every key, with its principal)."""
    return data_dir / "keys" / "broker.json"


def new_key(name: str, account: str) -> BrokerKey:
    """A fresh key: an AWS-shaped access key id (AKIA + 16 base32 characters) and a 40-character secret."""
    key_id = "AKIA" + base64.b32encode(secrets.token_bytes(10)).decode()[:16]
    secret = secrets.token_urlsafe(30)
    if name == ADMIN:
        return BrokerKey(name, key_id, secret, f"arn:aws:iam::{account}:root", admin=True)
    from scte.deploy.policies import principal_arn  # here: the supervisor reads paths from this module only

    return BrokerKey(name, key_id, secret, principal_arn(account, name))


def read_key(path: Path) -> BrokerKey:
    data = json.loads(path.read_text(encoding="utf-8"))
    return BrokerKey(
        data["name"], data["aws_access_key_id"], data["aws_secret_access_key"], data["principal"], data["admin"]
    )


def write_private_json(path: Path, data: object) -> None:
    """Write JSON readable by the owner only, atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _entry(key: BrokerKey, expires_at: float | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "access_key_id": key.access_key_id,
        "secret_access_key": key.secret_access_key,
        "principal": key.principal,
        "admin": key.admin,
    }
    if expires_at is not None:
        entry["expires_at"] = int(expires_at)
    return entry


def _retiring(data_dir: Path, current: Iterable[str], now: float) -> list[dict[str, Any]]:
    """The broker file's keys still in their rotation grace (not current, not yet expired)."""
    path = broker_file(data_dir)
    if not path.exists():
        return []
    keep = set(current)
    entries = json.loads(path.read_text(encoding="utf-8")).get("keys", [])
    return [
        e
        for e in entries
        if e.get("access_key_id") not in keep and e.get("expires_at") is not None and e["expires_at"] > now
    ]


def _write_broker_file(data_dir: Path, keys: dict[str, BrokerKey], extra: list[dict[str, Any]], now: float) -> None:
    current = [k.access_key_id for k in keys.values()]
    retiring = [
        e for e in _retiring(data_dir, current, now) if e["access_key_id"] not in {x["access_key_id"] for x in extra}
    ]
    entries = [_entry(k) for k in keys.values()] + retiring + extra
    write_private_json(broker_file(data_dir), {"keys": entries})


def ensure_keys(
    data_dir: Path, services: Iterable[str], account: str, *, clock: Callable[[], float] = time.time
) -> dict[str, BrokerKey]:
    """Every service's key and the admin's, generated where missing; the broker's file written to match."""
    keys: dict[str, BrokerKey] = {}
    for name in (ADMIN, *services):
        path = identity_dir(data_dir) / f"{name}.json"
        if path.exists():
            keys[name] = read_key(path)
        else:
            keys[name] = new_key(name, account)
            write_private_json(path, keys[name].as_json())
    _write_broker_file(data_dir, keys, [], clock())
    return keys


def rotate(
    data_dir: Path,
    name: str,
    account: str,
    *,
    grace: float = ROTATION_GRACE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> BrokerKey:
    """A new key for `name` (a service or `admin`); the old one stays valid for `grace` seconds."""
    directory = identity_dir(data_dir)
    path = directory / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in directory.glob("*.json")) if directory.exists() else []
        raise LookupError(f"no broker key for {name!r} in {directory} (known: {', '.join(known) or 'none'})")
    old = read_key(path)
    fresh = new_key(name, account)
    keys = {p.stem: read_key(p) for p in sorted(directory.glob("*.json"))}
    keys[name] = fresh
    now = clock()
    # the broker learns the new key first, then the service: no moment where the service holds a key the
    # broker does not know
    _write_broker_file(data_dir, keys, [_entry(old, expires_at=now + grace)], now)
    write_private_json(path, fresh.as_json())
    return fresh
