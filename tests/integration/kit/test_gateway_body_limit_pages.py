"""The gateway's answer to a body over the limit on the website's pages is the website's own error
page (a form is posted to a page, and a person reads the answer); on `/api/...` it is the services'
uniform JSON error (tests/integration/kit/test_body_limits.py, with real processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from scte.kit.app import MAX_BODY_SIZE
from scte.web.gateway import create_gateway


async def _too_much() -> AsyncIterator[bytes]:
    block = b"x" * 65536
    for _ in range(MAX_BODY_SIZE // len(block) + 2):
        yield block


async def test_a_form_over_the_limit_gets_the_website_error_page(tmp_path: Path) -> None:
    app = create_gateway({"members": "http://127.0.0.1:9"}, data_dir=tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        page = await client.post(
            "/sign-in", content=_too_much(), headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert page.status_code == 413
        assert page.headers["content-type"].startswith("text/html")
