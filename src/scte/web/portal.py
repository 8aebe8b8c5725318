"""The member portal (`/`): register, sign in and out, the account dashboard, orders and the card form.

Who may open what: the start page, registration, sign-in and the course catalogue are for anyone;
everything else needs a signed-in member (and shows only their own records: the services check the
token again on every call).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from scte.kit.auth import AuthError
from scte.web.client import ServiceDown, ServiceError
from scte.web.forms import errors_from, required, text
from scte.web.session import safe_next
from scte.web.site import Page, member_page, visitor_page

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

Visitor = Annotated[Page, Depends(visitor_page)]
Member = Annotated[Page, Depends(member_page)]

PRODUCT_NAMES = {
    "dues": "Membership dues (one year)",
    "exam_fee": "Exam fee",
    "course_seat": "Course seat",
    "renewal_fee": "Certification renewal fee",
}


def money(cents: int | None, currency: str = "USD") -> str:
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{sign}{symbol}{cents // 100:,}.{cents % 100:02d}"


# -- start, register, sign in and out ------------------------------------------------------------------


@router.get("/")
async def home(page: Visitor) -> Response:
    if page.session.signed_in:
        return page.redirect("/account")
    return page.render("portal/home.html", title="SCTE members")


_REGISTER_FIELDS = ("email", "display_name", "password", "city", "country")


@router.get("/register")
async def register_form(page: Visitor) -> Response:
    return page.render("portal/register.html", title="Create an account", values={}, errors={})


@router.post("/register")
async def register(page: Visitor) -> Response:
    form = await page.form()
    values = {name: text(form, name, 300) for name in _REGISTER_FIELDS}
    password = form.get("password")
    values["password"] = password if isinstance(password, str) else ""
    listed = form.get("listed_in_directory") == "yes"
    errors = required(values, {"email": "your email address", "display_name": "your name", "password": "a password"})
    if not errors:
        body: dict[str, Any] = {
            "email": values["email"],
            "password": values["password"],
            "display_name": values["display_name"],
            "listed_in_directory": listed,
            "city": values["city"] or None,
            "country": values["country"].upper() or None,
        }
        try:
            await page.services.post("members", "/members", body)
            return await _sign_in_and_go(page, values["email"], values["password"], "/account?notice=registered")
        except ServiceError as exc:
            if exc.status >= 500 or exc.status in (401, 403):
                raise
            errors = errors_from(exc, _REGISTER_FIELDS, {"name": "display_name", "account": "email"})
    values.pop("password")
    return page.render(
        "portal/register.html",
        status=400,
        title="Create an account",
        values={**values, "listed": listed},
        errors=errors,
    )


@router.get("/sign-in")
async def sign_in_form(page: Visitor, next: str = "") -> Response:
    target = safe_next(next, "/account")
    if page.session.signed_in:
        return page.redirect(target)
    return page.render("portal/sign_in.html", title="Sign in", next=target, values={}, errors={})


@router.post("/sign-in")
async def sign_in(page: Visitor) -> Response:
    form = await page.form()
    email = text(form, "email", 254)
    raw_password = form.get("password")
    password = raw_password if isinstance(raw_password, str) else ""
    target = safe_next(text(form, "next"), "/account")
    errors = required(
        {"email": email, "password": password}, {"email": "your email address", "password": "your password"}
    )
    if not errors:
        try:
            return await _sign_in_and_go(page, email, password, target)
        except ServiceError as exc:
            if exc.status == 401:
                errors = {"email": "The email address or the password is not right"}
            elif exc.status in (400, 422, 429):
                errors = errors_from(exc, ("email", "password"))
            else:
                raise
    return page.render(
        "portal/sign_in.html", status=400, title="Sign in", next=target, values={"email": email}, errors=errors
    )


async def _sign_in_and_go(page: Page, email: str, password: str, target: str) -> Response:
    answer = await page.services.with_token(None).post("members", "/sessions", {"email": email, "password": password})
    _start(page, answer)
    return page.redirect(target)


def _start(page: Page, answer: dict[str, Any]) -> None:
    """A new session from the members service's tokens (sign-in, password change)."""
    try:
        principal = page.site.keeper.verify(str(answer["access_token"]))
    except AuthError:
        raise ServiceError(401, "unauthorized", "the sign-in could not be checked") from None
    page.site.keeper.signed_in(page.session, answer, principal)


@router.post("/sign-out")
async def sign_out(page: Visitor) -> Response:
    await page.form()
    if page.session.refresh_token:  # the session ends at the members service too, not only in this browser
        try:
            await page.services.with_token(None).call(
                "POST", "members", "/sessions/sign-out", json={"refresh_token": page.session.refresh_token}
            )
        except (ServiceError, ServiceDown) as exc:
            log.warning("sign-out: the members service did not end the session: %s", exc)
    page.site.keeper.signed_out(page.session)
    return page.redirect("/?notice=signed-out")


# -- passwords: change (signed in), forgotten (a link by mail), reset (from the link) --------------------


@router.get("/password")
async def password_form(page: Member) -> Response:
    return page.render("portal/password.html", title="Change your password", errors={})


@router.post("/password")
async def change_password(page: Member) -> Response:
    form = await page.form()
    current, new = _raw(form, "current_password"), _raw(form, "new_password")
    errors = required(
        {"current_password": current, "new_password": new},
        {"current_password": "your current password", "new_password": "a new password"},
    )
    if not errors:
        body = {"current_password": current, "new_password": new}
        try:
            answer = await page.services.post("members", f"/members/{page.member_id}/password", body)
            _start(page, answer)
            return page.redirect("/account?notice=password")
        except ServiceError as exc:
            if exc.status in (401, 403) and "current" not in exc.message:
                raise
            errors = errors_from(
                exc,
                ("current_password", "new_password"),
                {"current": "current_password", "new": "new_password", "password": "new_password"},
            )
    return page.render("portal/password.html", status=400, title="Change your password", errors=errors)


@router.get("/password/forgot")
async def forgot_form(page: Visitor) -> Response:
    return page.render("portal/forgot.html", title="Reset your password", errors={}, values={})


@router.post("/password/forgot")
async def forgot(page: Visitor) -> Response:
    form = await page.form()
    email = text(form, "email", 254)
    errors = required({"email": email}, {"email": "your email address"})
    if not errors:
        try:
            await page.services.with_token(None).post("members", "/password-resets", {"email": email})
            return page.redirect("/sign-in?notice=reset-sent")
        except ServiceError as exc:
            errors = errors_from(exc, ("email",))
    return page.render(
        "portal/forgot.html", status=400, title="Reset your password", errors=errors, values={"email": email}
    )


@router.get("/password-reset")
async def reset_form(page: Visitor, token: str = "") -> Response:
    return page.render("portal/reset.html", title="Choose a new password", errors={}, token=token[:256])


@router.post("/password-reset")
async def reset(page: Visitor) -> Response:
    form = await page.form()
    token, new = text(form, "token", 256), _raw(form, "new_password")
    errors = required({"new_password": new}, {"new_password": "a new password"})
    if not token:
        errors["new_password"] = "This reset link is not complete: ask for a new one"
    if not errors:
        try:
            await page.services.with_token(None).post(
                "members", "/password-resets/confirm", {"token": token, "new_password": new}
            )
            page.site.keeper.signed_out(page.session)  # every session ended: sign in with the new password
            return page.redirect("/sign-in?notice=password-reset")
        except ServiceError as exc:
            errors = errors_from(
                exc, ("new_password",), {"password": "new_password", "token": "new_password", "link": "new_password"}
            )
    return page.render("portal/reset.html", status=400, title="Choose a new password", errors=errors, token=token)


def _raw(form: Any, name: str) -> str:
    """A password field as typed (not stripped: spaces may be part of it)."""
    value = form.get(name)
    return value[:1000] if isinstance(value, str) else ""


# -- the account dashboard ----------------------------------------------------------------------------


async def _optional(coro: Any, default: Any) -> Any:
    """A part of a page that may be missing (its service down): the page still shows the rest."""
    try:
        return await coro
    except Exception:  # ServiceDown or a refusal: that box says "not available"
        return default


@router.get("/account")
async def account(page: Member) -> Response:
    me_id = page.member_id
    s = page.services
    me, membership, certifications, orders = await asyncio.gather(
        s.get("members", "/me"),
        _optional(s.get("members", f"/members/{me_id}/membership"), None),
        _optional(s.get("certification", f"/members/{me_id}/certifications"), None),
        _optional(s.get("commerce", f"/members/{me_id}/orders"), None),
    )
    cert_items = certifications.get("items", certifications) if isinstance(certifications, dict) else certifications
    order_items = orders.get("items", orders) if isinstance(orders, dict) else orders
    unpaid = [o for o in (order_items or []) if o.get("status") not in ("paid", "cancelled")]
    return page.render(
        "portal/account.html",
        title="Your account",
        me=me,
        membership=membership,
        certifications=cert_items,
        unpaid=unpaid,
        money=money,
        product_names=PRODUCT_NAMES,
    )


# -- orders and paying by card ------------------------------------------------------------------------


@router.post("/account/dues")
async def order_dues(page: Member) -> Response:
    await page.form()
    order = await page.services.post("commerce", "/orders", {"lines": [{"kind": "dues"}]})
    return page.redirect(f"/orders/{order['order_id']}/pay")


@router.get("/orders")
async def orders(page: Member) -> Response:
    found = await page.services.get("commerce", f"/members/{page.member_id}/orders")
    items = found.get("items", found) if isinstance(found, dict) else found
    return page.render(
        "portal/orders.html", title="Your orders", orders=items, money=money, product_names=PRODUCT_NAMES
    )


_CARD_FIELDS = ("number", "exp_month", "exp_year", "cvc")


async def _order(page: Page, order_id: str) -> dict[str, Any]:
    if not order_id.replace("-", "").isalnum() or len(order_id) > 128:
        raise ServiceError(404, "not_found", "there is no such order")
    result: dict[str, Any] = await page.services.get("commerce", f"/orders/{order_id}")
    return result


@router.get("/orders/{order_id}/pay")
async def pay_form(order_id: str, page: Member) -> Response:
    order = await _order(page, order_id)
    return page.render(
        "portal/pay.html", title="Pay", order=order, values={}, errors={}, money=money, product_names=PRODUCT_NAMES
    )


@router.post("/orders/{order_id}/pay")
async def pay(order_id: str, page: Member) -> Response:
    form = await page.form()
    order = await _order(page, order_id)
    values = {name: text(form, name, 40) for name in _CARD_FIELDS}
    values["number"] = values["number"].replace(" ", "").replace("-", "")
    errors = required(
        values,
        {
            "number": "the card number",
            "exp_month": "the expiry month",
            "exp_year": "the expiry year",
            "cvc": "the security code",
        },
    )
    for name, label in (("exp_month", "month"), ("exp_year", "year")):
        if name not in errors and not values[name].isdigit():
            errors[name] = f"The expiry {label} must be a number"
    if not errors and order.get("status") == "paid":
        errors = {"_form": "This order is already paid"}
    if not errors:
        card = {
            "number": values["number"],
            "exp_month": int(values["exp_month"]),
            "exp_year": int(values["exp_year"]),
            "cvc": values["cvc"],
        }
        try:
            await page.services.post("commerce", f"/orders/{order_id}/pay", {"card": card})
            return page.redirect("/account?notice=paid")
        except ServiceError as exc:
            if exc.status == 402:
                errors = {"number": f"The card was declined: {exc.message}"}
            elif exc.status in (400, 409, 422):
                errors = errors_from(exc, _CARD_FIELDS, {"card": "number", "expir": "exp_year", "month": "exp_month"})
            else:
                raise
    values.pop("cvc", None)
    return page.render(
        "portal/pay.html",
        status=400,
        title="Pay",
        order=order,
        values=values,
        errors=errors,
        money=money,
        product_names=PRODUCT_NAMES,
    )
