"""The two switches of `scte up` as every process reads them (`SCTE_BROKER`, `SCTE_DATABASE`): what each value
means, and a clear refusal of anything else (the command-line refusals: tests/integration/supervision/
test_production_mode.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from scte.kit.settings import Settings, parse_broker, parse_database, service_database_url


def test_the_embedded_broker_is_the_default_and_the_only_one_provisioned_by_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCTE_BROKER", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")  # once needed to reach AWS; now it changes nothing
    settings = Settings(data_dir=tmp_path, broker_port=9555)
    assert settings.broker == "embedded"
    assert settings.aws_endpoint_url == "http://127.0.0.1:9555"
    assert not settings.production


@pytest.mark.parametrize(
    ("given", "endpoint"),
    [("aws", None), ("AWS", None), ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"), ("https://sqs.example", None)],
)
def test_another_broker_is_production(tmp_path: Path, given: str, endpoint: str | None) -> None:
    settings = Settings(data_dir=tmp_path, broker=given)
    assert settings.production
    if given.lower() == "aws":
        assert settings.aws_endpoint_url is None  # the SDK's own endpoints: no override
    elif endpoint is not None:
        assert settings.aws_endpoint_url == endpoint
    else:
        assert settings.aws_endpoint_url == given


def test_the_in_process_transport_is_never_production(tmp_path: Path) -> None:
    assert not Settings(data_dir=tmp_path, broker="aws", transport="inprocess").production


@pytest.mark.parametrize("bad", ["kafka", "", "ftp://broker", "http://", "http://h:port", "http://h/?x=1", "sqs"])
def test_a_bad_broker_is_refused_with_what_is_accepted(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="expected `embedded`"):
        parse_broker(bad)
    with pytest.raises(ValidationError, match="expected `embedded`"):
        Settings(data_dir=tmp_path, broker=bad)


def test_postgresql_gives_each_service_its_own_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCTE_DATABASE", "postgresql://scte:pw@db.internal:6543/prod")
    monkeypatch.setenv("SCTE_SEARCH_DATABASE_URL", "postgresql+asyncpg://elsewhere/search")
    settings = Settings(data_dir=tmp_path)
    assert settings.database == "postgresql+asyncpg://scte:pw@db.internal:6543/prod"
    assert settings.database_url("members") == "postgresql+asyncpg://scte:pw@db.internal:6543/prod_members"
    assert settings.database_url("search") == "postgresql+asyncpg://elsewhere/search"  # one named wins
    assert parse_database("postgres://u@h") == "postgresql+asyncpg://u@h/scte"  # the base defaults to scte
    assert service_database_url(parse_database("postgresql://u@h/b"), "media") == "postgresql+asyncpg://u@h/b_media"
    assert Settings(data_dir=tmp_path, database="SQLite").database_url("media").startswith("sqlite+scte:///")


@pytest.mark.parametrize(
    "bad",
    [
        "mysql://u@h/db",
        "postgresql:///nohost",
        "postgresql://u@h/bad-name",
        "sqlite3",
        "",
        "postgresql://u@h/" + "x" * 41,
    ],
)
def test_a_bad_database_is_refused_with_what_is_accepted(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="expected `sqlite`"):
        parse_database(bad)
    with pytest.raises(ValidationError, match="expected `sqlite`"):
        Settings(data_dir=tmp_path, database=bad)


def test_a_refused_database_url_never_shows_its_password() -> None:
    with pytest.raises(ValueError, match="expected `sqlite`") as refused:
        parse_database("postgresql://scte:hunter2@db/bad-name")
    assert "hunter2" not in str(refused.value)
    assert "db" in str(refused.value)
