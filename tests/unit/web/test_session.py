"""The website's session rules without a browser: where sign-in may send a visitor back to, CSRF
tokens, the install secret, and which field a service's refusal belongs to."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from starlette.requests import Request

from scte.web.client import ServiceError
from scte.web.forms import errors_from
from scte.web.session import CSRF_COOKIE, CsrfError, SessionKeeper, load_secret, safe_next


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/account", "/account"),
        ("/courses?q=x", "/courses?q=x"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("", "/"),
        (None, "/"),
        ("account", "/"),
    ],
)
def test_safe_next_keeps_visitors_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def _request(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"cookie", header.encode())],
        "query_string": b"",
    }
    return Request(scope)


def test_csrf_token_matches_only_its_own_browser() -> None:
    keeper = SessionKeeper(b"k" * 32, None)
    session = keeper.read(_request({}))
    assert session.new_seed
    mine = _request({CSRF_COOKIE: session.csrf_seed})
    keeper.check_csrf(mine, session.csrf_token)
    with pytest.raises(CsrfError):
        keeper.check_csrf(mine, None)
    with pytest.raises(CsrfError):
        keeper.check_csrf(mine, "0" * 64)
    other = keeper.read(_request({}))
    with pytest.raises(CsrfError):
        keeper.check_csrf(_request({CSRF_COOKIE: other.csrf_seed}), session.csrf_token)
    with pytest.raises(CsrfError):  # another install's secret
        SessionKeeper(b"x" * 32, None).check_csrf(mine, session.csrf_token)


def test_sign_in_renews_the_csrf_value() -> None:
    keeper = SessionKeeper(b"k" * 32, None)
    session = keeper.read(_request({}))
    before = session.csrf_token
    keeper.signed_out(session)
    assert session.csrf_token != before


def test_the_secret_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "web" / "secret"
    first = load_secret(path)
    assert len(first) == 32 and load_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_refusal_lands_on_the_field_it_names() -> None:
    fields = ("email", "display_name", "password", "country")
    assert errors_from(ServiceError(422, "x", "m", {"country": "String should have at most 2 characters"}), fields) == {
        "country": "String should have at most 2 characters"
    }
    assert errors_from(ServiceError(400, "x", "password: use at least 12 characters"), fields) == {
        "password": "Use at least 12 characters"
    }
    assert errors_from(ServiceError(409, "x", "an account with this email exists"), fields) == {
        "email": "An account with this email exists"
    }
    assert errors_from(ServiceError(400, "x", "something else"), fields) == {"_form": "Something else"}
