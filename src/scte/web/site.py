"""The website's machinery shared by every section (portal `/`, `/company`, `/staff`, `/console`).

A section is an `APIRouter` whose routes take a `Page` (the request, the session, the services as
that person sees them) through one of the dependencies that state who may open it:

    @router.get("/company")
    async def company_home(page: Annotated[Page, Depends(role_page("company_admin", "staff"))]) -> Response:
        rollup = await page.services.get("companies", f"/companies/{page.company_id}/rollup")
        return page.render("company/home.html", rollup=rollup)

`visitor_page` admits anyone, `member_page` anyone signed in (others are sent to sign-in and come
back after it), `role_page(...)` the holders of a role (others get 403). A POST reads its form with
`await page.form()`, which refuses a missing or wrong CSRF token. Templates are autoescaped Jinja2:
every string from a person or a service is escaped. `install_site` adds the pages and their error
handling to the gateway app.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from scte.bus import observe
from scte.kit.app import error_body
from scte.kit.auth import AuthError, TokenVerifier
from scte.kit.forwarding import forwarded_headers, gateway_secret_path, read_gateway_secret
from scte.web.assets import Assets
from scte.web.client import ServiceDown, ServiceError, Services
from scte.web.session import CSRF_FIELD, CsrfError, SessionKeeper, WebSession, load_secret, safe_next

__all__ = [
    "Page",
    "PageForbidden",
    "SignInRequired",
    "Site",
    "install_site",
    "member_page",
    "role_page",
    "visitor_page",
]

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
REFRESH_SHARE = 30.0
REFERENCE_COOKIE = "scte_ref"
"""The correlation id of the form a visitor just posted, carried over its redirect (a minute, HttpOnly):
the page after it shows the action's reference, not the one of the GET that drew it."""
_REFERENCE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_PAGE_HEADERS = {
    # Our own scripts and styles only (no inline script, nothing from another origin); no framing.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class SignInRequired(Exception):
    """A private page opened without signing in: to the sign-in page, and back after it."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageForbidden(Exception):
    """Signed in, but this page is not for this person (403)."""


@dataclass
class Site:
    """What the pages are made with: templates, assets, the session keeper and the service clients."""

    env: Environment
    assets: Assets
    keeper: SessionKeeper
    clients: Mapping[str, httpx.AsyncClient]
    gateway_secret: str | None = None
    """Proves to the services the visitor's address the pages forward (scte.kit.forwarding)."""
    refreshes: dict[str, tuple[float, asyncio.Future[dict[str, Any] | None]]] = field(default_factory=dict)
    """Refresh token -> (when, the members service's answer): see `resume`."""

    @classmethod
    def create(
        cls,
        clients: Mapping[str, httpx.AsyncClient],
        *,
        secret: bytes,
        verifier: TokenVerifier | None,
        assets: Assets | None = None,
        secure_cookies: bool = False,
        gateway_secret: str | None = None,
    ) -> Site:
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"], default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        site = cls(
            env, assets or Assets(), SessionKeeper(secret, verifier, secure=secure_cookies), clients, gateway_secret
        )
        env.globals["asset"] = site.assets.url
        env.filters["quote"] = lambda value: urllib.parse.quote(str(value), safe="")
        return site

    def page(self, request: Request) -> Page:
        """The page as the cookies say (no call to any service: error pages use it)."""
        session = self.keeper.read(request)
        forwarded = forwarded_headers(request.client.host if request.client else None, self.gateway_secret)
        return Page(self, request, session, Services(self.clients, session.token, forwarded))

    async def resume(self, request: Request) -> Page:
        """The page, its session renewed first when the access token has expired and a refresh token is
        there. A refresh token works once, and a browser asks for a page and its images at the same
        moment: one exchange per refresh token, whose answer the other requests of that moment share
        (kept REFRESH_SHARE seconds), so the browser never presents a used token (which would end the
        session)."""
        page = self.page(request)
        session = page.session
        if session.principal is not None or not session.refresh_token:
            return page
        answer = await self._refreshed(session.refresh_token)
        principal = None
        if answer is not None:
            try:
                principal = self.keeper.verify(str(answer["access_token"]))
            except AuthError:
                principal = None
        if answer is None or principal is None:
            self.keeper.signed_out(session)
        else:
            self.keeper.signed_in(session, answer, principal, renew_csrf=False)
        page.services = page.services.with_token(session.token)  # keeps the visitor's forwarded address
        return page

    async def _refreshed(self, refresh_token: str) -> dict[str, Any] | None:
        now = time.monotonic()
        for key, (when, _) in list(self.refreshes.items()):
            if now - when > REFRESH_SHARE:
                del self.refreshes[key]
        known = self.refreshes.get(refresh_token)
        if known is not None:
            return await asyncio.shield(known[1])
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self.refreshes[refresh_token] = (now, future)
        try:
            answer = await Services(self.clients).post("members", "/sessions/refresh", {"refresh_token": refresh_token})
            future.set_result(answer if isinstance(answer, dict) else None)
        except (ServiceError, ServiceDown) as exc:
            log.info("session refresh refused: %s", exc)
            future.set_result(None)
        return future.result()


@dataclass
class Page:
    """One page request: who is there, the services as they see them, and how to answer."""

    site: Site
    request: Request
    session: WebSession
    services: Services

    @property
    def member_id(self) -> str:
        assert self.session.principal is not None
        return self.session.principal.member_id

    @property
    def company_id(self) -> str | None:
        return self.session.principal.company_id if self.session.principal else None

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        # the action's reference in the footer: the form posted just before (its redirect's cookie), else
        # this request's own correlation id (the X-Correlation-Id of this answer)
        carried = self.request.cookies.get(REFERENCE_COOKIE, "")
        posted = carried if self.request.method == "GET" and _REFERENCE.match(carried) else None
        html = self.site.env.get_template(template).render(
            request=self.request,
            session=self.session,
            csrf_field=CSRF_FIELD,
            current_path=self.request.url.path,
            reference=posted or observe.correlation_id.get(),
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)
        if self.session.signed_in:
            response.headers["Cache-Control"] = "no-store"
        self.site.keeper.write(self.session, response)
        if carried:  # shown once
            response.delete_cookie(
                REFERENCE_COOKIE, path="/", secure=self.site.keeper.secure, httponly=True, samesite="lax"
            )
        return response

    def redirect(self, url: str, status: int = 303) -> Response:
        response = RedirectResponse(url, status_code=status)
        self.site.keeper.write(self.session, response)
        correlation = observe.correlation_id.get()
        if self.request.method == "POST" and correlation:
            response.set_cookie(
                REFERENCE_COOKIE,
                correlation,
                max_age=60,
                path="/",
                secure=self.site.keeper.secure,
                httponly=True,
                samesite="lax",
            )
        return response

    async def form(self) -> FormData:
        """The posted form, once its CSRF token is checked (CsrfError otherwise)."""
        form = await self.request.form()
        self.site.keeper.check_csrf(self.request, form.get(CSRF_FIELD))
        return form


def _site(request: Request) -> Site:
    site = getattr(request.app.state, "site", None)
    assert isinstance(site, Site), "install_site() was not called on this app"
    return site


async def visitor_page(request: Request) -> Page:
    """Anyone may open this page."""
    return await _site(request).resume(request)


async def member_page(request: Request) -> Page:
    """Anyone signed in; others go to sign-in and come back here after it."""
    page = await _site(request).resume(request)
    if not page.session.signed_in:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else request.url.path)
    return page


def role_page(*roles: str) -> Callable[[Request], Awaitable[Page]]:
    """Holders of any of `roles` (signed-out visitors go to sign-in; others get 403)."""

    async def dependency(request: Request) -> Page:
        page = await member_page(request)
        if not page.session.has_role(*roles):
            raise PageForbidden(f"this page is for {' or '.join(r.replace('_', ' ') for r in roles)} only")
        return page

    return dependency


def _is_page_path(path: str) -> bool:
    return not (path.startswith("/api/") or path in ("/api", "/health"))


def install_site(app: FastAPI, site: Site, routers: list[Any]) -> None:
    """Serve the website on `app`: its assets, its sections' routers, and error pages."""
    app.state.site = site
    site.assets.install(app)
    for router in routers:
        app.include_router(router)

    def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
        page = site.page(request)
        return page.render("error.html", status=status, title=title, message=message)

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        page = site.page(request)
        return page.redirect("/sign-in?next=" + urllib.parse.quote(safe_next(exc.next_url), safe="/"))

    async def forbidden(request: Request, exc: Exception) -> Response:
        return error_page(request, 403, "You cannot open this page", str(exc))

    async def csrf(request: Request, exc: Exception) -> Response:
        return error_page(
            request, 403, "The form has expired", "Go back, reload the page and send the form again. " + str(exc) + "."
        )

    async def down(request: Request, exc: Exception) -> Response:
        log.warning("page %s: %s", request.url.path, exc)
        return error_page(request, 503, "Sorry, this part of the service is unavailable", "Try again in a moment.")

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        if exc.status == 401:  # the token expired or was revoked meanwhile
            page = site.page(request)
            site.keeper.signed_out(page.session)
            target = request.url.path if request.method == "GET" else "/account"
            return page.redirect("/sign-in?next=" + urllib.parse.quote(safe_next(target), safe="/"))
        if exc.status == 403:
            return error_page(request, 403, "You cannot open this page", exc.message)
        if exc.status == 404:
            return error_page(request, 404, "Page not found", exc.message)
        return error_page(request, 400, "That did not work", exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not _is_page_path(request.url.path):
            message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
            return JSONResponse(
                error_body("not_found" if exc.status_code == 404 else "error", message), exc.status_code
            )
        if exc.status_code == 404:
            return error_page(request, 404, "Page not found", "If you typed the web address, check it is correct.")
        if exc.status_code == 405:
            return error_page(request, 405, "That did not work", "This page cannot be used that way.")
        return error_page(request, exc.status_code, "That did not work", str(exc.detail))

    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(PageForbidden, forbidden)
    app.add_exception_handler(CsrfError, csrf)
    app.add_exception_handler(ServiceDown, down)
    app.add_exception_handler(ServiceError, refused)
    app.add_exception_handler(StarletteHTTPException, http_error)


def build_site(clients: Mapping[str, httpx.AsyncClient], data_dir: Path, public_key: Path) -> Site:
    """The site of a running platform: the install's secret and the members service's public key."""
    verifier = None
    try:
        verifier = TokenVerifier.from_file(public_key)
    except OSError:
        log.warning("no public key at %s: nobody can sign in to the website", public_key)
    secret = load_secret(data_dir / "web" / "secret")
    gateway_secret = read_gateway_secret(gateway_secret_path(data_dir))
    return Site.create(clients, secret=secret, verifier=verifier, gateway_secret=gateway_secret)
