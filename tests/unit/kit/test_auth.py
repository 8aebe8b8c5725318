"""Tokens: Ed25519-signed, verified with the public key only; principals and role checks."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scte.kit.auth import (
    AuthError,
    Forbidden,
    Principal,
    TokenIssuer,
    TokenVerifier,
    ensure_company_admin,
    ensure_self_or_staff,
    generate_key_pair,
)


def test_issue_and_verify_round_trip(tmp_path: Path) -> None:
    assert generate_key_pair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    assert not generate_key_pair(tmp_path / "k.pem", tmp_path / "k.pub.pem")  # kept on restart
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    issuer = TokenIssuer.from_file(tmp_path / "k.pem")
    verifier = TokenVerifier.from_file(tmp_path / "k.pub.pem")
    token = issuer.issue("m1", ["member", "company_admin"], "acme")
    assert verifier.verify(token) == Principal("m1", frozenset({"member", "company_admin"}), "acme")


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
