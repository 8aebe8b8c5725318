"""The broker's principals: who an access key is (`--credentials FILE`), read again when the file changes.

The file is JSON, readable by its owner only (the broker refuses one that group or others may read):

    {"keys": [{"access_key_id": "AKIA...", "secret_access_key": "...",
               "principal": "arn:aws:iam::123456789012:role/scte-members",
               "admin": false, "expires_at": 1767225600}]}

`principal` is the IAM ARN that resource policies name (`{"AWS": "<principal>"}`); its account is the one in
the ARN. `admin: true` marks the account owner, who owns every queue and topic (`scte up`'s own key).
`expires_at` (optional, seconds since the epoch) ends a key: `scte admin rotate-broker-key` leaves the old key
valid for a few minutes, so that a running service switches to the new one without a refused call.

Keys given as `--access-key AKID:SECRET` are admin keys of the broker's account (the earlier strict mode).
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scte.queue.policy import Principal

__all__ = ["CredentialsError", "Identity", "KeyStore", "load_identities"]

log = logging.getLogger("scte.queue.server")

RELOAD_INTERVAL_SECONDS = 1.0
_PRINCIPAL = re.compile(r"arn:aws:(iam|sts)::([0-9]{12}):[A-Za-z0-9+=,.@_/-]+")
_ACCESS_KEY = re.compile(r"[A-Za-z0-9_-]{4,128}")


class CredentialsError(ValueError):
    """A credentials file the broker will not use (unreadable, readable by others, malformed)."""


@dataclass(frozen=True, slots=True)
class Identity:
    access_key: str
    secret: str
    principal: Principal
    expires_at: float | None = None


def load_identities(path: Path) -> dict[str, Identity]:
    """Access key -> identity, from a credentials file; `CredentialsError` saying what is wrong."""
    try:
        info = path.stat()
    except OSError as exc:
        raise CredentialsError(f"cannot read the credentials file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"the credentials file {path} is readable by others (mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"the credentials file {path} is not JSON: {exc}") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise CredentialsError(f'the credentials file {path} must be an object with a "keys" list')
    out: dict[str, Identity] = {}
    for index, item in enumerate(keys):
        where = f"{path}: keys[{index}]"
        if not isinstance(item, dict):
            raise CredentialsError(f"{where} must be an object")
        key, secret, arn = item.get("access_key_id"), item.get("secret_access_key"), item.get("principal")
        if not isinstance(key, str) or not _ACCESS_KEY.fullmatch(key):
            raise CredentialsError(f"{where}: access_key_id must be 4-128 letters, digits, '_' or '-'")
        if not isinstance(secret, str) or len(secret) < 16:
            raise CredentialsError(f"{where}: secret_access_key must be a string of at least 16 characters")
        match = _PRINCIPAL.fullmatch(arn) if isinstance(arn, str) else None
        if match is None:
            raise CredentialsError(f"{where}: principal must be an IAM ARN such as arn:aws:iam::<account>:role/<name>")
        admin = item.get("admin", False)
        expires = item.get("expires_at")
        if not isinstance(admin, bool) or (expires is not None and not isinstance(expires, int | float)):
            raise CredentialsError(f"{where}: admin must be true or false, expires_at a number of seconds")
        if key in out:
            raise CredentialsError(f"{where}: access key {key} appears twice")
        out[key] = Identity(key, secret, Principal(match.group(0), match.group(2), admin=admin), expires)
    return out


class KeyStore(Mapping[str, str]):
    """Access key -> secret for the SigV4 verifier, and access key -> principal for the policies.

    Keys from `--access-key` are fixed; those of a credentials file are read again (at most once a second)
    when the file changes, so a rotated key takes effect without restarting the broker. A file that has
    become unreadable or malformed keeps the keys read before (and says so in the log)."""

    def __init__(
        self,
        account_id: str,
        static: Mapping[str, str] | None = None,
        path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.clock = clock
        self._static = {
            key: Identity(key, secret, Principal.root(account_id)) for key, secret in (static or {}).items()
        }
        self._identities = dict(self._static)
        self._signature: tuple[int, int, int] | None = None
        self._checked = 0.0
        if path is not None:
            self._identities.update(load_identities(path))  # a bad file at start-up stops the broker
            self._signature = _file_signature(path)
            self._checked = time.monotonic()

    def _refresh(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked < RELOAD_INTERVAL_SECONDS:
            return
        self._checked = now
        try:
            signature = _file_signature(self.path)
        except OSError:
            return
        if signature == self._signature:
            return
        try:
            identities = load_identities(self.path)
        except CredentialsError as exc:
            log.error("credentials not reloaded, the previous keys stay: %s", exc)
            return
        self._signature = signature
        self._identities = {**self._static, **identities}
        log.info("credentials reloaded from %s (%d keys)", self.path, len(self._identities))

    def identity(self, access_key: str) -> Identity | None:
        """The identity of a key that exists and has not expired."""
        self._refresh()
        identity = self._identities.get(access_key)
        if identity is None or (identity.expires_at is not None and self.clock() >= identity.expires_at):
            return None
        return identity

    def principal(self, access_key: str) -> Principal | None:
        identity = self.identity(access_key)
        return identity.principal if identity is not None else None

    # Mapping[str, str]: the secrets, as the verifier reads them
    def get(self, access_key: str, default: Any = None) -> Any:  # Mapping.get goes through __getitem__ and a raise
        identity = self.identity(access_key)
        return identity.secret if identity is not None else default

    def __getitem__(self, access_key: str) -> str:
        identity = self.identity(access_key)
        if identity is None:
            raise KeyError(access_key)
        return identity.secret

    def __iter__(self) -> Iterator[str]:
        return iter(self._identities)

    def __len__(self) -> int:
        return len(self._identities)


def _file_signature(path: Path) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_mtime_ns, info.st_size, info.st_ino
