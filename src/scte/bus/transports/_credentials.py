"""A service's broker key read from its file (`scte up` writes `<data>/keys/broker/<service>.json`), read
again when the file changes, so that a rotated key (`scte admin rotate-broker-key`) is taken up by the
running service without a restart. The key never passes through the environment."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["FileCredentials"]

CHECK_INTERVAL_SECONDS = 1.0


class FileCredentials:
    """`current()`: (access key id, secret, None), as the signer takes them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._value: tuple[str, str, None] | None = None
        self.current()  # a missing or broken file is an error at start, not at the first message

    def current(self) -> tuple[str, str, None]:
        now = time.monotonic()
        if self._value is not None and now - self._checked < CHECK_INTERVAL_SECONDS:
            return self._value
        self._checked = now
        info = os.stat(self.path)
        signature = (info.st_mtime_ns, info.st_size, info.st_ino)
        if signature != self._signature or self._value is None:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            key, secret = data.get("aws_access_key_id"), data.get("aws_secret_access_key")
            if not isinstance(key, str) or not isinstance(secret, str):
                raise ValueError(f"{self.path} holds no aws_access_key_id and aws_secret_access_key")
            self._value = (key, secret, None)
            self._signature = signature
        return self._value
