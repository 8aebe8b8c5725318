"""Settings of the SQS wire server: where it listens, where the data lives, how it names things.

Every field can come from the command line or from an `SCTE_QUEUE_*` environment variable
(`SCTE_QUEUE_HOST`, `SCTE_QUEUE_PORT`, `SCTE_QUEUE_DATA`, `SCTE_QUEUE_ACCOUNT_ID`, `SCTE_QUEUE_REGION`,
`SCTE_QUEUE_DURABILITY`, `SCTE_QUEUE_TEST_MODE`, `SCTE_QUEUE_AUTH`, `SCTE_QUEUE_ACCESS_KEYS` as
`AKID:SECRET[,AKID:SECRET...]`, `SCTE_QUEUE_CREDENTIALS`, `SCTE_QUEUE_INFLIGHT_LIMIT`); the command line wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scte.queue.operations import INFLIGHT_LIMIT

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9324
DEFAULT_DATA_DIR = "var/queue"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's and many emulators' account; moto's test suite expects it
DEFAULT_REGION = "us-east-1"
DB_FILE_NAME = "broker.db"

_ACCOUNT_RE = re.compile(r"[0-9]{12}")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
MAX_REGIONS = 64  # engines a broker opens at most (one per region that requests name)


def valid_region(region: str) -> bool:
    return _REGION_RE.fullmatch(region) is not None


def parse_access_keys(values: Iterable[str]) -> dict[str, str]:
    """`AKID:SECRET` items (each may itself be a comma-separated list) -> {access key id: secret}."""
    keys: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            key_id, sep, secret = item.partition(":")
            if not sep or not key_id or not secret:
                raise ValueError("access keys are given as AKID:SECRET")
            keys[key_id] = secret
    return keys


@dataclass(frozen=True)
class ServerConfig:
    """What `scte queue serve` needs; validated on construction."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    account_id: str = DEFAULT_ACCOUNT_ID
    region: str = DEFAULT_REGION
    durability: Literal["normal", "full"] = "normal"
    test_mode: bool = False
    """Answer `POST /moto-api/reset` (and the few other calls moto's test suite makes); never in production."""
    auth: Literal["any", "strict"] = "any"
    """any: accept every request, signed or not (as local emulators do); strict: verify SigV4 signatures."""
    access_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Access key id -> secret key, for `auth="strict"`: the account owner's keys (admin)."""
    credentials_file: Path | None = None
    """For `auth="strict"`: the principals' keys (see `credentials.py`); their requests are checked
    against the queues' and topics' policies."""
    inflight_limit: int = INFLIGHT_LIMIT
    queue_urls: Literal["region", "plain"] = "region"
    """The queue URLs the broker gives: region: `http://HOST:PORT/queue/REGION/ACCOUNT/NAME` (a queue of the
    same name in two regions has two URLs); plain: `http://HOST:PORT/ACCOUNT/NAME`, the form moto's suites
    expect. Both forms are accepted either way."""
    """Messages in flight per queue before a receive is answered `OverLimit` (SQS: about 120,000)."""

    def __post_init__(self) -> None:
        if not _ACCOUNT_RE.fullmatch(self.account_id):
            raise ValueError(f"account id must be 12 digits, got {self.account_id!r}")
        if not _REGION_RE.fullmatch(self.region):
            raise ValueError(f"region must look like us-east-1, got {self.region!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.durability not in ("normal", "full"):
            raise ValueError(f"durability must be normal or full, got {self.durability!r}")
        if self.queue_urls not in ("region", "plain"):
            raise ValueError(f"queue URLs must be region or plain, got {self.queue_urls!r}")
        if self.auth not in ("any", "strict"):
            raise ValueError(f"auth must be any or strict, got {self.auth!r}")
        if not 1 <= self.inflight_limit <= 10_000_000:
            raise ValueError(f"in-flight limit must be 1..10000000, got {self.inflight_limit}")
        if self.auth == "strict" and not self.access_keys and self.credentials_file is None:
            raise ValueError("--auth strict needs --credentials FILE or at least one --access-key AKID:SECRET")

    def region_db_path(self, region: str) -> Path:
        """The default region's data stays at `<data>/broker.db`; another region's is `<data>/<region>/broker.db`."""
        return self.db_path if region == self.region else self.data_dir / region / DB_FILE_NAME

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE_NAME

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> ServerConfig:
        """Defaults, then `SCTE_QUEUE_*` variables, then the non-None `overrides` (the command line)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if "SCTE_QUEUE_HOST" in env:
            values["host"] = env["SCTE_QUEUE_HOST"]
        if "SCTE_QUEUE_PORT" in env:
            values["port"] = int(env["SCTE_QUEUE_PORT"])
        if "SCTE_QUEUE_DATA" in env:
            values["data_dir"] = Path(env["SCTE_QUEUE_DATA"])
        if "SCTE_QUEUE_ACCOUNT_ID" in env:
            values["account_id"] = env["SCTE_QUEUE_ACCOUNT_ID"]
        if "SCTE_QUEUE_REGION" in env:
            values["region"] = env["SCTE_QUEUE_REGION"]
        if "SCTE_QUEUE_DURABILITY" in env:
            values["durability"] = env["SCTE_QUEUE_DURABILITY"]
        if "SCTE_QUEUE_TEST_MODE" in env:
            values["test_mode"] = env["SCTE_QUEUE_TEST_MODE"].lower() in ("1", "true", "yes", "on")
        if "SCTE_QUEUE_AUTH" in env:
            values["auth"] = env["SCTE_QUEUE_AUTH"]
        if "SCTE_QUEUE_ACCESS_KEYS" in env:
            values["access_keys"] = parse_access_keys([env["SCTE_QUEUE_ACCESS_KEYS"]])
        if "SCTE_QUEUE_CREDENTIALS" in env:
            values["credentials_file"] = Path(env["SCTE_QUEUE_CREDENTIALS"])
        if "SCTE_QUEUE_URLS" in env:
            values["queue_urls"] = env["SCTE_QUEUE_URLS"]
        if "SCTE_QUEUE_INFLIGHT_LIMIT" in env:
            try:
                values["inflight_limit"] = int(env["SCTE_QUEUE_INFLIGHT_LIMIT"])
            except ValueError:
                raise ValueError(
                    f"SCTE_QUEUE_INFLIGHT_LIMIT must be a whole number, got {env['SCTE_QUEUE_INFLIGHT_LIMIT']!r}"
                ) from None
        for key, value in overrides.items():
            if value is not None:
                values[key] = Path(str(value)) if key in ("data_dir", "credentials_file") else value
        return cls(**values)  # type: ignore[arg-type]
