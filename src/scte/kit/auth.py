"""Sign-in tokens: JWTs signed with Ed25519 by the members service, verified by every service.

Only members holds the private key; every other service holds the public key, so no service can
mint a token and none needs to call members to check one. A token carries the member id (`sub`),
the roles and the company the member administers, if any, and its sign-in session: the session id
(`sid`) and the member's revocation epoch when it was issued (`rev`).

Access tokens live at most 15 minutes (`MAX_ACCESS_TOKEN_TTL`); the members service renews them with
single-use refresh tokens. A token is refused before it expires when its session was revoked: the
runtime of every service keeps the revocations (`scte.kit.revocation`) and `require_principal` looks
each request's token up there.

In a route:

    @router.get("/members/{member_id}")
    async def read(member_id: str, principal: CurrentPrincipal) -> ...:
        ensure_self_or_staff(principal, member_id)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = [
    "AUDIENCE",
    "BEARER",
    "BEARER_SCHEME_NAME",
    "ISSUER",
    "MAX_ACCESS_TOKEN_TTL",
    "ROLES",
    "AuthError",
    "CurrentPrincipal",
    "Forbidden",
    "Principal",
    "TokenIssuer",
    "TokenVerifier",
    "ensure_company_admin",
    "ensure_self_or_staff",
    "generate_key_pair",
    "require_principal",
    "require_role",
]

ROLES = frozenset({"member", "staff", "company_admin"})
ISSUER = "scte-members"
AUDIENCE = "scte"
ALGORITHM = "EdDSA"
MAX_ACCESS_TOKEN_TTL = timedelta(minutes=15)
"""The longest an access token may live: a revocation the services have not heard of (their queue
down) is still bounded by it."""


class AuthError(Exception):
    """No valid token: the request is refused with 401."""


class Forbidden(Exception):
    """A valid token, but not allowed to do this: 403."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, from a verified token."""

    member_id: str
    roles: frozenset[str]
    company_id: str | None = None
    session_id: str | None = None
    """The sign-in session the token belongs to (revoked as a whole)."""
    epoch: int = 0
    """The member's revocation epoch when the token was issued."""

    @property
    def is_staff(self) -> bool:
        return "staff" in self.roles

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


def ensure_self_or_staff(principal: Principal, member_id: str) -> None:
    """A member acts on their own records only; staff on anyone's."""
    if principal.member_id != member_id and not principal.is_staff:
        raise Forbidden("you may only see and change your own records")


def ensure_company_admin(principal: Principal, company_id: str) -> None:
    """A company's admin (or staff) acts on that company's records only."""
    if principal.is_staff:
        return
    if "company_admin" not in principal.roles or principal.company_id != company_id:
        raise Forbidden("only this company's administrators may do this")


# -- keys ------------------------------------------------------------------------------------------------


def generate_key_pair(private_path: Path, public_path: Path) -> bool:
    """Write a new Ed25519 key pair as PEM files unless the private key exists; True if written.

    The private key file is created with mode 0600."""
    if private_path.exists():
        if not public_path.exists():
            key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{private_path} is not an Ed25519 private key")
            public_path.write_bytes(_public_pem(key.public_key()))
        return False
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public_path.write_bytes(_public_pem(key.public_key()))
    return True


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class TokenIssuer:
    """Signs tokens (the members service)."""

    def __init__(self, private_key: Ed25519PrivateKey, *, ttl: timedelta = MAX_ACCESS_TOKEN_TTL) -> None:
        if not timedelta(0) < ttl <= MAX_ACCESS_TOKEN_TTL:
            raise ValueError(f"an access token lives more than 0 s and at most {MAX_ACCESS_TOKEN_TTL}, not {ttl}")
        self._key = private_key
        self.ttl = ttl

    @classmethod
    def from_pem(cls, pem: bytes, *, ttl: timedelta = MAX_ACCESS_TOKEN_TTL) -> TokenIssuer:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the signing key is not an Ed25519 private key")
        return cls(key, ttl=ttl)

    @classmethod
    def from_file(cls, path: Path, *, ttl: timedelta = MAX_ACCESS_TOKEN_TTL) -> TokenIssuer:
        return cls.from_pem(path.read_bytes(), ttl=ttl)

    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def verifier(self) -> TokenVerifier:
        """The verifier of this issuer's tokens (tests, and members' own routes)."""
        return TokenVerifier(self._key.public_key())

    def issue(
        self,
        member_id: str,
        roles: Iterable[str] = ("member",),
        company_id: str | None = None,
        *,
        session_id: str | None = None,
        epoch: int = 0,
        now: datetime | None = None,
    ) -> str:
        """A signed access token for this member, in `session_id` (the members service's sessions; a
        fresh id otherwise, for tools and tests: a session nobody can renew) at revocation `epoch`."""
        role_set = sorted(set(roles))
        unknown = set(role_set) - ROLES
        if unknown:
            raise ValueError(f"unknown roles: {sorted(unknown)}")
        issued = now or datetime.now(UTC)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": member_id,
            "roles": role_set,
            "company_id": company_id,
            "iat": int(issued.timestamp()),
            "exp": int((issued + self.ttl).timestamp()),
            "jti": uuid.uuid4().hex,
            "sid": session_id or uuid.uuid4().hex,
            "rev": epoch,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)


class TokenVerifier:
    """Verifies tokens (every service); holds the public key only."""

    def __init__(self, public_key: Ed25519PublicKey, *, leeway_seconds: int = 30) -> None:
        self._key = public_key
        self.leeway = leeway_seconds

    @classmethod
    def from_pem(cls, pem: bytes) -> TokenVerifier:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the verification key is not an Ed25519 public key")
        return cls(key)

    @classmethod
    def from_file(cls, path: Path) -> TokenVerifier:
        return cls.from_pem(path.read_bytes())

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; `AuthError` otherwise (bad signature, expired, malformed)."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "sid", "rev"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        roles = claims.get("roles")
        company = claims.get("company_id")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthError("invalid token: roles")
        if company is not None and not isinstance(company, str):
            raise AuthError("invalid token: company_id")
        session_id, epoch = claims["sid"], claims["rev"]
        if not isinstance(session_id, str) or not session_id:
            raise AuthError("invalid token: sid")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise AuthError("invalid token: rev")
        return Principal(
            member_id=str(claims["sub"]),
            roles=frozenset(roles) & ROLES,
            company_id=company,
            session_id=session_id,
            epoch=epoch,
        )


# -- FastAPI dependencies --------------------------------------------------------------------------------


def _verifier(request: Request) -> TokenVerifier:
    verifier = getattr(request.app.state, "token_verifier", None)
    if not isinstance(verifier, TokenVerifier):
        raise AuthError("this service cannot verify tokens (no public key configured)")
    return verifier


RevokedCheck = Callable[[Principal], Awaitable[bool]]
"""`app.state.revocations`: True when a principal's session is revoked (set by the service runtime)."""


BEARER_SCHEME_NAME = "bearer"
BEARER = HTTPBearer(
    scheme_name=BEARER_SCHEME_NAME,
    bearerFormat="JWT",
    description="An access token from the members service (`POST /api/members/sessions`), sent as "
    "`Authorization: Bearer <token>`; every service verifies it with the members service's public key.",
    auto_error=False,  # the refusal is ours (uniform body, WWW-Authenticate), below
)


async def require_principal(
    request: Request,
    # declares the bearer scheme on every route that depends on this one, so the OpenAPI documents show
    # which operations need a token; the header is read below, as it always was
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> Principal:
    """The caller, from `Authorization: Bearer <token>`; 401 without a valid one, or when the token's
    session was revoked (signed out, password changed, roles taken away)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("sign in first: send Authorization: Bearer <token>")
    principal = _verifier(request).verify(token.strip())
    revoked: RevokedCheck | None = getattr(request.app.state, "revocations", None)
    if revoked is not None and await revoked(principal):
        raise AuthError("this session was signed out or revoked: sign in again")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]


def require_role(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting callers holding any of `roles` (403 otherwise):
    `principal: Annotated[Principal, Depends(require_role("staff"))]`."""
    unknown = set(roles) - ROLES
    if unknown or not roles:
        raise ValueError(f"require_role needs known roles, got {roles}")

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(*roles):
            raise Forbidden(f"this needs the role {' or '.join(roles)}")
        return principal

    return dependency
