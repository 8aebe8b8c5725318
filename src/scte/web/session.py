"""The browser's session: sign-in cookies and CSRF tokens.

A signed-in browser holds the members service's short-lived access token (`scte_session`) and its
rotating refresh token (`scte_refresh`) in HttpOnly, SameSite=Lax cookies, so no script can read them
and no other site's form or image sends them along with a POST. The gateway verifies the access token
with the public key (it cannot mint one) to know who is there and which pages they may open; every
service verifies it again on each call. When it has expired, the site trades the refresh token for a
new pair (`scte.web.site.Site.page`); signing out ends the session at the members service.

CSRF: every browser gets a random value in a second HttpOnly cookie (`scte_csrf`); each form carries
HMAC(install secret, that value) in a hidden field, and a POST whose field does not match is refused
(403). Another site can make the browser send the cookie but cannot read it nor compute the field.
The value is renewed at sign-in and sign-out, so a token seen before sign-in is useless after it.
The secret is generated per install in the data directory (0600).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request, Response

from scte.kit.auth import AuthError, Principal, TokenVerifier

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "REFRESH_COOKIE",
    "SESSION_COOKIE",
    "CsrfError",
    "SessionKeeper",
    "WebSession",
    "load_secret",
    "safe_next",
]

SESSION_COOKIE = "scte_session"
REFRESH_COOKIE = "scte_refresh"
CSRF_COOKIE = "scte_csrf"
CSRF_FIELD = "csrf_token"


class CsrfError(Exception):
    """A form posted without the right CSRF token."""


def load_secret(path: Path) -> bytes:
    """The install's secret for CSRF tokens, created (0600) on first use."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another gateway process made it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(value)
    return value


def safe_next(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site (after sign-in the visitor goes back there), else `default`:
    never another origin (`//evil.example`, `https://...`, `/\\evil`)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(c in target for c in "\r\n\\") or len(target) > 2000:
        return default
    return target


@dataclass
class WebSession:
    """Who is at the browser (from the cookie) and the CSRF values of this request."""

    token: str | None
    principal: Principal | None
    csrf_seed: str
    csrf_token: str
    new_seed: bool = False
    refresh_token: str | None = None
    """The browser had no CSRF cookie yet: the response sets it."""
    cookies_to_set: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    @property
    def signed_in(self) -> bool:
        return self.principal is not None

    def has_role(self, *roles: str) -> bool:
        return self.principal is not None and self.principal.has_role(*roles)


class SessionKeeper:
    """Reads and writes the session cookies; checks CSRF tokens."""

    def __init__(self, secret: bytes, verifier: TokenVerifier | None, *, secure: bool = False) -> None:
        self._secret = secret
        self._verifier = verifier
        self.secure = secure
        """`Secure` cookies (set when the site is served over HTTPS)."""

    def _csrf_for(self, seed: str) -> str:
        return hmac.new(self._secret, b"csrf:" + seed.encode(), hashlib.sha256).hexdigest()

    def read(self, request: Request) -> WebSession:
        """The session of this request (cached on `request.state`)."""
        cached = getattr(request.state, "web_session", None)
        if isinstance(cached, WebSession):
            return cached
        token = request.cookies.get(SESSION_COOKIE) or None
        principal = None
        if token and self._verifier is not None:
            try:
                principal = self._verifier.verify(token)
            except AuthError:
                token = None  # expired or forged: as if signed out
        seed = request.cookies.get(CSRF_COOKIE, "")
        new_seed = len(seed) < 20
        if new_seed:
            seed = secrets.token_urlsafe(32)
        refresh = request.cookies.get(REFRESH_COOKIE) or None
        if refresh is not None and len(refresh) > 256:
            refresh = None
        session = WebSession(token, principal, seed, self._csrf_for(seed), new_seed, refresh)
        request.state.web_session = session
        return session

    def check_csrf(self, request: Request, submitted: object) -> None:
        """Refuse (CsrfError) unless `submitted` is this browser's CSRF token."""
        seed = request.cookies.get(CSRF_COOKIE, "")
        if not seed or not isinstance(submitted, str) or not hmac.compare_digest(submitted, self._csrf_for(seed)):
            raise CsrfError("the form's security token is missing or out of date")

    def signed_in(
        self, session: WebSession, answer: dict[str, object], principal: Principal, *, renew_csrf: bool = True
    ) -> None:
        """Remember the members service's tokens (a sign-in's or a refresh's answer). A sign-in also gets
        a new CSRF value (the forms of the page before it stop working); a refresh keeps it."""
        token = str(answer["access_token"])
        refresh = answer.get("refresh_token")
        lifetime = answer.get("refresh_expires_in") or answer.get("expires_in") or 900
        max_age = int(lifetime) if isinstance(lifetime, int | str) else 900
        session.token = token
        session.principal = principal
        session.cookies_to_set[SESSION_COOKIE] = (token, max_age)
        if isinstance(refresh, str) and refresh:
            session.refresh_token = refresh
            session.cookies_to_set[REFRESH_COOKIE] = (refresh, max_age)
        if renew_csrf:
            session.csrf_seed = secrets.token_urlsafe(32)
            session.csrf_token = self._csrf_for(session.csrf_seed)
            session.cookies_to_set[CSRF_COOKIE] = (session.csrf_seed, None)

    def signed_out(self, session: WebSession) -> None:
        session.token = None
        session.principal = None
        session.refresh_token = None
        session.csrf_seed = secrets.token_urlsafe(32)
        session.csrf_token = self._csrf_for(session.csrf_seed)
        session.cookies_to_set[SESSION_COOKIE] = ("", 0)
        session.cookies_to_set[REFRESH_COOKIE] = ("", 0)
        session.cookies_to_set[CSRF_COOKIE] = (session.csrf_seed, None)

    def verify(self, token: str) -> Principal:
        if self._verifier is None:
            raise AuthError("the site cannot verify sign-ins (no public key)")
        return self._verifier.verify(token)

    def write(self, session: WebSession, response: Response) -> None:
        """Set on `response` the cookies this request changed."""
        if session.new_seed and CSRF_COOKIE not in session.cookies_to_set:
            session.cookies_to_set[CSRF_COOKIE] = (session.csrf_seed, None)
        for name, (value, max_age) in session.cookies_to_set.items():
            if max_age == 0:
                response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")
            else:
                response.set_cookie(
                    name, value, max_age=max_age, path="/", secure=self.secure, httponly=True, samesite="lax"
                )
