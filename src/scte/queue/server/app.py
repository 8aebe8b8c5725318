"""The ASGI application: health, moto's reset (test mode only) and the two SQS protocols.

A bare ASGI callable, no framework: every request is one dictionary lookup away from its handler.
The engine opens at lifespan startup and closes at shutdown (`drain`), when pending long polls return
empty and everything already acknowledged is on disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from scte.queue.engine import Engine, EngineConfig
from scte.queue.errors import SqsError, missing_parameter
from scte.queue.server import json_protocol, query_protocol
from scte.queue.server.actions import ACTIONS, RequestContext
from scte.queue.server.config import ServerConfig
from scte.queue.server.errors import (
    Headers,
    Response,
    internal_error,
    json_error,
    service_unavailable,
    unknown_operation,
    xml_error,
)
from scte.queue.store import StoreClosed

log = logging.getLogger("scte.queue.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = b"application/json"


def _json_response(status: int, data: object) -> Response:
    return status, [(b"content-type", _JSON)], json.dumps(data).encode()


class SqsApp:
    """ASGI app serving one engine over the SQS JSON and query protocols."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.engine: Engine | None = None
        self.closing = False

    # -- life cycle --------------------------------------------------------------------------------------

    def _new_engine(self) -> Engine:
        c = self.config
        return Engine(EngineConfig(path=c.db_path, durability=c.durability, account_id=c.account_id, region=c.region))

    async def startup(self) -> None:
        if self.engine is None:
            self.engine = await self._new_engine().start()
            log.info("queue engine open at %s", self.config.db_path)

    async def drain(self) -> None:
        """Stop serving: pending long polls return (empty), acknowledged work is committed, the file closes."""
        self.closing = True
        if self.engine is not None:
            await self.engine.close()

    async def reset(self) -> None:
        """Test mode: throw every queue and message away (moto's `POST /moto-api/reset`)."""
        old, self.engine = self.engine, None
        if old is not None:
            await old.close()
        await asyncio.to_thread(_remove_database, self.config.db_path)
        self.engine = await self._new_engine().start()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("queue engine failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.drain()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- requests ----------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            status, headers, body = await self._http(scope, receive)
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive) -> Response:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/health":
            if self.engine is None or self.closing:
                return _json_response(503, {"status": "unavailable"})
            return _json_response(200, {"status": "ok"})
        body = await _read_body(receive)
        if path.startswith("/moto-api/") and self.config.test_mode and method == "POST":
            if path == "/moto-api/reset":
                await self.reset()
            return _json_response(200, {"status": "ok"})
        target = b""
        for name, value in scope["headers"]:
            if name == b"x-amz-target":
                target = value
                break
        request_id = str(uuid.uuid4())
        if target:
            return await self._json_request(scope, target.decode("latin-1"), body, request_id)
        return await self._query_request(scope, body, request_id)

    def _context(self, scope: Scope, engine: Engine) -> RequestContext:
        host = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
                break
        if not host:
            host = f"{self.config.host}:{self.config.port}"
        return RequestContext(
            engine=engine,
            account_id=self.config.account_id,
            base_url=f"{scope.get('scheme', 'http')}://{host}",
            path=scope["path"],
        )

    async def _json_request(self, scope: Scope, target: str, body: bytes, request_id: str) -> Response:
        action_name = target[len(json_protocol.TARGET_PREFIX) :] if target.startswith("AmazonSQS.") else target
        try:
            action = ACTIONS.get(action_name) if target.startswith(json_protocol.TARGET_PREFIX) else None
            if action is None:
                raise unknown_operation(action_name)
            engine = self._engine()
            params = json_protocol.check_params(action.schema, json_protocol.parse_body(body))
            result = await action.handler(self._context(scope, engine), params)
            return json_protocol.render(result, request_id)
        except SqsError as exc:
            return json_error(exc, request_id)
        except StoreClosed:
            return json_error(service_unavailable(), request_id)
        except Exception:
            log.exception("internal error in %s", action_name)
            return json_error(internal_error(), request_id)

    async def _query_request(self, scope: Scope, body: bytes, request_id: str) -> Response:
        form = query_protocol.parse_form(scope.get("query_string") or b"", body)
        action_name = form.get("Action", "")
        try:
            if not action_name:
                raise missing_parameter("Action")
            action = ACTIONS.get(action_name)
            if action is None:
                if self.config.test_mode and action_name == "GetCallerIdentity":
                    return self._caller_identity(request_id)
                raise unknown_operation(action_name)
            engine = self._engine()
            params = query_protocol.params_from_form(action.schema, form)
            result = await action.handler(self._context(scope, engine), params)
            return query_protocol.render(action_name, result, request_id)
        except SqsError as exc:
            return xml_error(exc, request_id)
        except StoreClosed:
            return xml_error(service_unavailable(), request_id)
        except Exception:
            log.exception("internal error in %s", action_name)
            return xml_error(internal_error(), request_id)

    def _engine(self) -> Engine:
        if self.engine is None or self.closing:
            raise service_unavailable()
        return self.engine

    def _caller_identity(self, request_id: str) -> Response:
        """STS GetCallerIdentity, test mode only: moto's suite asks it (through us) for the account id."""
        account = self.config.account_id
        body = (
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<GetCallerIdentityResult><UserId>AKIAIOSFODNN7EXAMPLE</UserId><Account>{account}</Account>"
            f"<Arn>arn:aws:sts::{account}:user/moto</Arn></GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        ).encode()
        headers: Headers = [(b"content-type", b"text/xml")]
        return 200, headers, body


def _remove_database(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


def create_app(config: ServerConfig | None = None) -> SqsApp:
    return SqsApp(config or ServerConfig())
