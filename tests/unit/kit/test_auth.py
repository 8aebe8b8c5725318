"""Tokens: Ed25519-signed, verified with the public key only; principals and role checks."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from scte.kit.auth import (
    AUDIENCE,
    ISSUER,
    MAX_ACCESS_TOKEN_TTL,
    AuthError,
    Forbidden,
    Principal,
    TokenIssuer,
    TokenVerifier,
    ensure_company_admin,
    ensure_self_or_staff,
    generate_key_pair,
)
from scte.kit.settings import Settings


def test_issue_and_verify_round_trip(tmp_path: Path) -> None:
    assert generate_key_pair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    assert not generate_key_pair(tmp_path / "k.pem", tmp_path / "k.pub.pem")  # kept on restart
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    issuer = TokenIssuer.from_file(tmp_path / "k.pem")
    verifier = TokenVerifier.from_file(tmp_path / "k.pub.pem")
    token = issuer.issue("m1", ["member", "company_admin"], "acme", session_id="s-1", epoch=3)
    assert verifier.verify(token) == Principal("m1", frozenset({"member", "company_admin"}), "acme", "s-1", 3)
    # without a session, a token still gets one (tools, tests): every token can be revoked
    assert verifier.verify(issuer.issue("m1")).session_id


def test_access_tokens_live_at_most_15_minutes() -> None:
    key = Ed25519PrivateKey.generate()
    assert TokenIssuer(key).ttl == MAX_ACCESS_TOKEN_TTL == timedelta(minutes=15)
    for ttl in (timedelta(hours=12), timedelta(minutes=15, seconds=1), timedelta(0)):
        with pytest.raises(ValueError, match="at most"):
            TokenIssuer(key, ttl=ttl)
    with pytest.raises(ValidationError):
        Settings(token_ttl_seconds=12 * 3600)
    assert Settings().token_ttl_seconds == 900


def _signed(key: Ed25519PrivateKey, **claims: object) -> str:
    now = int(datetime.now(UTC).timestamp())
    base: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "m1",
        "roles": ["member"],
        "company_id": None,
        "iat": now,
        "exp": now + 300,
        "sid": "s-1",
        "rev": 0,
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not _ABSENT}, key, algorithm="EdDSA")


_ABSENT = object()


@pytest.mark.parametrize(
    "claims",
    [
        {"sid": _ABSENT},
        {"rev": _ABSENT},
        {"sid": ""},
        {"sid": 7},
        {"rev": -1},
        {"rev": "0"},
        {"rev": True},
    ],
    ids=lambda c: ",".join(f"{k}={'absent' if v is _ABSENT else repr(v)}" for k, v in c.items()),
)
def test_tokens_without_a_valid_session_are_refused(claims: dict[str, object]) -> None:
    """A token that names no session could not be revoked: refused, even when properly signed."""
    key = Ed25519PrivateKey.generate()
    verifier = TokenVerifier(key.public_key())
    assert verifier.verify(_signed(key)).session_id == "s-1"
    with pytest.raises(AuthError, match="invalid token"):
        verifier.verify(_signed(key, **claims))


def test_refused_tokens() -> None:
    issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl=timedelta(minutes=5))
    verifier = issuer.verifier()
    other = TokenIssuer(Ed25519PrivateKey.generate())
    old = issuer.issue("m1", now=datetime.now(UTC) - timedelta(hours=1))
    for token in (other.issue("m1"), old, "garbage", issuer.issue("m1") + "x"):
        with pytest.raises(AuthError):
            verifier.verify(token)
    with pytest.raises(ValueError):
        issuer.issue("m1", ["root"])


def test_role_checks() -> None:
    member = Principal("m1", frozenset({"member"}))
    staff = Principal("s1", frozenset({"member", "staff"}))
    admin = Principal("a1", frozenset({"member", "company_admin"}), "acme")
    ensure_self_or_staff(member, "m1")
    ensure_self_or_staff(staff, "m1")
    with pytest.raises(Forbidden):
        ensure_self_or_staff(member, "m2")
    ensure_company_admin(admin, "acme")
    ensure_company_admin(staff, "acme")
    for principal, company in ((admin, "other"), (member, "acme")):
        with pytest.raises(Forbidden):
            ensure_company_admin(principal, company)
