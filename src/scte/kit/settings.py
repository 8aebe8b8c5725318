"""Configuration of a process: one `Settings` object built from `SCTE_*` environment variables.

Per-service values are looked up by the service's name, so one environment serves every process:
`SCTE_MEMBERS_DATABASE_URL`, `SCTE_MEMBERS_PORT`. Unset, a service gets an SQLite file under the data
directory and the platform's default port.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from scte.kit.switches import BROKERS, parse_broker, parse_database

__all__ = ["BROKERS", "Settings", "get_settings", "parse_broker", "parse_database", "service_database_url"]


def _env_name(service: str, what: str) -> str:
    return f"SCTE_{service.upper().replace('-', '_')}_{what}"


def service_database_url(base_url: str, service: str) -> str:
    """The service's own database on the server of `base_url` (`parse_database`'s form): `<base>_<service>`."""
    url = make_url(base_url)
    out: str = url.set(database=f"{url.database}_{service.replace('-', '_')}").render_as_string(hide_password=False)
    return out


class Settings(BaseSettings):
    """Everything a service process reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="SCTE_", extra="ignore", frozen=True)

    data_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    """Where service APIs and the gateway listen (loopback: the gateway is the one public origin)."""

    transport: Literal["aws", "inprocess"] = "aws"
    """aws: SQS/SNS through the SDK, at the endpoint `broker` names; inprocess: the broker engine inside
    this process (single-process runs and tests only)."""
    broker: str = "embedded"
    """`SCTE_BROKER` (`scte up --broker`): `embedded`, the platform's own broker (`scte queue serve` at
    `SCTE_BROKER_PORT` on `host`); `aws`, AWS itself with the SDK's default credential chain and region and
    no endpoint override; or the URL of any SQS/SNS endpoint (moto_server, LocalStack...). Outside the
    embedded broker a service never provisions: it checks the topology is there (`scte.bus.transports._check`)."""
    broker_port: int = 9324
    """The embedded broker's port (`SCTE_BROKER_PORT`)."""
    queue_prefix: str = ""
    """Prefix of physical queue and topic names (several platforms on one broker or AWS account)."""
    receive_wait_seconds: int = Field(default=20, ge=0, le=20)
    """The consumer's long poll (`WaitTimeSeconds`). 20 on SQS; moto_server needs less: it copies the FIFO
    groups in flight once per ReceiveMessage, so a poll that began while a group was in flight does not see
    its next message until the poll ends (moto/sqs/models.py, `receive_message`)."""
    provision_on_start: bool = True
    """On the embedded broker, each service provisions its own queue and subscriptions when it starts
    (idempotent); `scte up` provisions for them and turns it off. Never done on another broker."""
    broker_identity_dir: Path | None = None
    """Directory of the services' broker key files (`<service>.json`, written by `scte up`); unset: the
    usual AWS credential chain (or placeholders for a local broker that checks none)."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025

    auth_private_key: Path | None = None
    """PEM file of the Ed25519 signing key (members only); default `<data_dir>/keys/jwt-ed25519.pem`."""
    auth_public_key: Path | None = None
    """PEM file of the verification key (every service); default `<data_dir>/keys/jwt-ed25519.pub.pem`."""
    token_ttl_seconds: int = Field(default=900, ge=1, le=900)
    """Lifetime of an access token: at most 15 minutes (refresh tokens renew it)."""
    refresh_token_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    """A refresh token unused this long expires (each use replaces it with a new one)."""
    session_max_age_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    """A sign-in session ends this long after the sign-in, however often it was refreshed."""
    public_url: str = "http://127.0.0.1:8000"
    """Where people reach the platform (the gateway): links in mail (password reset) start with it."""

    clock_offset_seconds: float = 0.0
    """Added to the wall clock: tests of schedules (expiry reminders) run months ahead."""
    clock_file: Path | None = None
    """A file holding an offset in seconds, re-read when it changes: moves a running system's clock."""

    database: str = "sqlite"
    """`SCTE_DATABASE` (`scte up --database`): `sqlite`, a file per service under the data directory, or a
    PostgreSQL server URL whose base name `B` gives each service its own database `B_<service>`."""
    database_urls: dict[str, str] = Field(default_factory=dict)
    """Database URL per service (tests); wins over `SCTE_<SERVICE>_DATABASE_URL`."""
    ports: dict[str, int] = Field(default_factory=dict)
    """Port per service (tests); wins over `SCTE_<SERVICE>_PORT`."""

    replica: int = Field(default=0, ge=0)
    """Which process of the service this is (`scte up --replicas`, `scte.supervision.replicas`): 0
    serves the API on the service's port; the others consume and answer `/health` on `replica_port`."""
    replica_port: int = Field(default=0, ge=0, le=65535)

    log_level: str = "info"
    shutdown_grace_seconds: float = 10.0

    span_store: bool = False
    """Write this process's spans to the install's span store (`span_store_path`; `scte up` turns it on):
    what the console's trace view reads. Spans also go over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set."""

    @field_validator("broker")
    @classmethod
    def _broker_switch(cls, value: str) -> str:
        return parse_broker(value)

    @field_validator("database")
    @classmethod
    def _database_switch(cls, value: str) -> str:
        return parse_database(value)

    @property
    def aws_endpoint_url(self) -> str | None:
        """The SQS/SNS endpoint the services call: the embedded broker's, the URL given, or None (AWS's own)."""
        if self.broker == "embedded":
            return f"http://{self.host}:{self.broker_port}"
        return None if self.broker == "aws" else self.broker

    @property
    def production(self) -> bool:
        """Not the embedded broker: the topology is deployed beforehand; a service checks it, never makes it."""
        return self.transport == "aws" and self.broker != "embedded"

    # -- per service ------------------------------------------------------------------------------------

    def database_url(self, service: str) -> str:
        """`SCTE_<SERVICE>_DATABASE_URL`, else its database on the `SCTE_DATABASE` server, else the service's
        SQLite file in the data directory."""
        given = self.database_urls.get(service) or os.environ.get(_env_name(service, "DATABASE_URL"))
        if given:
            return given
        if self.database != "sqlite":
            return service_database_url(self.database, service)
        return f"sqlite+scte:///{(self.data_dir / f'{service}.db').resolve()}"

    def port(self, service: str, default: int) -> int:
        """`SCTE_<SERVICE>_PORT`, else `default` (the platform's port for it)."""
        if service in self.ports:
            return self.ports[service]
        given = os.environ.get(_env_name(service, "PORT"))
        return int(given) if given else default

    def broker_key_file(self, service: str) -> Path | None:
        """The service's broker key file, when `scte up` gave the services one each."""
        return self.broker_identity_dir / f"{service}.json" if self.broker_identity_dir is not None else None

    def service_dir(self, service: str) -> Path:
        """A directory of the service's own files (uploads, renditions...)."""
        return self.data_dir / service

    @property
    def private_key_path(self) -> Path:
        return self.auth_private_key or self.data_dir / "keys" / "jwt-ed25519.pem"

    @property
    def public_key_path(self) -> Path:
        return self.auth_public_key or self.data_dir / "keys" / "jwt-ed25519.pub.pem"

    @property
    def span_store_path(self) -> Path:
        return self.data_dir / "traces" / "spans.sqlite"

    @property
    def metrics_token_path(self) -> Path:
        """The install's token for `GET /metrics` (written by `scte up`, mode 0600)."""
        return self.data_dir / "keys" / "metrics-token"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings (read once)."""
    return Settings()
