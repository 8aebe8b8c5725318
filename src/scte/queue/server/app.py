"""The ASGI application: health, metrics, moto's reset (test mode only) and the two SQS protocols.

A bare ASGI callable, no framework: every request is one dictionary lookup away from its handler.
One engine per region: the default region's opens at lifespan startup, another region's when a request
first names it (SigV4 credential scope), or when SNS fans out to one of its queues (`_resolve_region`, the
engines' `topics.region_resolver`). They close at shutdown (`drain`), when pending long polls return
empty and everything already acknowledged is on disk.

Every request: body capped (`MAX_BODY_BYTES`, 413) and timed (`BODY_TIMEOUT_SECONDS`, 408), signature
verified with `--auth strict` (except SNS's capability links: unsigned `GET /?Action=ConfirmSubscription|
Unsubscribe`) and then checked against the policy of the queue or topic it names (`authorize`), one JSON
line on the `scte.queue.server.access` logger, counted for `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import os
import shutil
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson

from scte.queue.engine import Engine, EngineConfig
from scte.queue.errors import SqsError, missing_parameter
from scte.queue.server import auth, json_protocol, query_protocol, sns_actions, sns_protocol
from scte.queue.server.actions import ACTIONS, RequestContext, queue_does_not_exist, url_region
from scte.queue.server.authorize import authorize_sqs
from scte.queue.server.config import MAX_REGIONS, ServerConfig, valid_region
from scte.queue.server.credentials import KeyStore
from scte.queue.server.errors import (
    Headers,
    Response,
    WireError,
    internal_error,
    json_error,
    request_timeout,
    request_too_large,
    service_unavailable,
    unknown_operation,
    unknown_operation_404,
    unsupported_media_type,
    xml_error,
)
from scte.queue.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from scte.queue.server.metrics import Metrics
from scte.queue.store import StoreClosed

log = logging.getLogger("scte.queue.server")
access_log = logging.getLogger("scte.queue.server.access")

# A message is at most 1 MiB, a batch too; on the wire JSON escapes (`\uXXXX` pairs) and form
# percent-encoding can triple that, and attributes and member names add a little.
MAX_BODY_BYTES = 3 * 1_048_576 + 256 * 1024
BODY_TIMEOUT_SECONDS = 30.0
_JSON_CONTENT_TYPES = (b"application/x-amz-json-1.0", b"application/x-amz-json-1.1", b"application/json")
_FORM_CONTENT_TYPE = b"application/x-www-form-urlencoded"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = b"application/json"


def _json_response(status: int, data: object) -> Response:
    return status, [(b"content-type", _JSON)], json.dumps(data).encode()


def is_plain(scope: Scope) -> bool:
    """`GET /metrics` or `/health`: answered without a body, a request id, a log line or a signature."""
    path: str = scope["path"]
    return path == "/health" or (path == "/metrics" and scope["method"] == "GET")


# Request ids are UUID-shaped like AWS's: a random prefix per process and a counter, unique without
# drawing 16 random bytes per request (uuid4 was a visible cost on the request path).
_REQUEST_ID_PREFIX = str(uuid.uuid4())[:24]
_request_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


def _next_request_id() -> str:
    return "%s%012x" % (_REQUEST_ID_PREFIX, next(_request_counter) & 0xFFFFFFFFFFFF)  # noqa: UP031 - cheaper


_RECEIVE_TARGET = json_protocol.TARGET_PREFIX.encode() + b"ReceiveMessage"


class RequestHead:
    """A request's headers as the server reads them, and the request id its answer carries."""

    __slots__ = ("authorization", "content_length", "content_type", "request_id", "target")

    def __init__(
        self,
        target: bytes | None,
        authorization: bytes | None,
        content_type: bytes | None,
        content_length: bytes | None,
        request_id: str,
    ) -> None:
        self.target = target
        self.authorization = authorization
        self.content_type = content_type
        self.content_length = content_length
        self.request_id = request_id

    def error(self, exc: SqsError) -> Response:
        """An error in the request's protocol: JSON when it names an `X-Amz-Target`, else XML."""
        return json_error(exc, self.request_id) if self.target else xml_error(exc, self.request_id)

    def is_receive(self, scope: Scope, body: bytes) -> bool:
        """A ReceiveMessage (maybe a long poll): cancelled when its client goes away."""
        if self.target:
            return self.target == _RECEIVE_TARGET
        return b"Action=ReceiveMessage" in body or b"Action=ReceiveMessage" in scope["query_string"]


class SqsApp:
    """ASGI app serving one engine per region over the SQS JSON and query protocols."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.engine: Engine | None = None  # the default region's
        self.engines: dict[str, Engine] = {}  # region -> engine, the default region's included
        self._opening: dict[str, asyncio.Lock] = {}
        self.closing = False
        self.metrics = Metrics()
        self.keys: KeyStore | None = None
        self.verifier: auth.Verifier | None = None
        if config.auth == "strict":
            self.keys = KeyStore(config.account_id, config.access_keys, config.credentials_file)
            self.verifier = auth.Verifier(self.keys)

    # -- life cycle --------------------------------------------------------------------------------------

    def _new_engine(self, region: str | None = None) -> Engine:
        c = self.config
        region = region or c.region
        engine = Engine(
            EngineConfig(
                path=c.region_db_path(region),
                durability=c.durability,
                account_id=c.account_id,
                region=region,
                inflight_limit=c.inflight_limit,
            )
        )
        engine.topics.region_resolver = self._resolve_region  # SNS fan-out to other regions' queues
        engine.topics.enforce_queue_policies = c.auth == "strict"  # SNS delivers where queue policies allow
        return engine

    async def _resolve_region(self, region: str) -> Engine | None:
        """A region's engine for SNS deliveries from another region, opened on first use as for requests.
        None while unavailable (shutting down, resetting): the delivery is retried; LookupError for a
        region this server will not serve: the delivery is given up."""
        if self.closing:
            return None
        if not valid_region(region):
            raise LookupError(f"invalid region {region!r}")
        if region not in self.engines and region != self.config.region:
            try:
                await self._open_region(region)
            except WireError as exc:
                raise LookupError(exc.message) from None
        return self.engines.get(region)

    async def startup(self) -> None:
        if self.engine is None:
            self.engine = await self._new_engine().start()
            self.engines[self.config.region] = self.engine
            log.info("queue engine open at %s", self.config.db_path)

    async def _open_region(self, region: str) -> None:
        """Open a region's engine on first use (`<data>/<region>/broker.db`)."""
        lock = self._opening.setdefault(region, asyncio.Lock())
        async with lock:
            if region in self.engines or self.closing:
                return
            if len(self.engines) >= MAX_REGIONS:
                raise WireError("InvalidParameterValue", f"This broker serves at most {MAX_REGIONS} regions.")
            self.engines[region] = await self._new_engine(region).start()
            log.info("queue engine open at %s", self.config.region_db_path(region))

    async def drain(self) -> None:
        """Stop serving: pending long polls return (empty), acknowledged work is committed, the files close."""
        self.closing = True
        engines = list(self.engines.values()) or ([self.engine] if self.engine is not None else [])
        await asyncio.gather(*(engine.close() for engine in engines))

    async def reset(self) -> None:
        """Test mode: throw every queue and message away, in every region (moto's `POST /moto-api/reset`)."""
        old, self.engines, self.engine = self.engines, {}, None
        await asyncio.gather(*(engine.close() for engine in old.values()))
        for region in old:
            if region != self.config.region:
                await asyncio.to_thread(shutil.rmtree, self.config.region_db_path(region).parent, True)
        await asyncio.to_thread(_remove_database, self.config.db_path)
        self.metrics.reset()
        self.engine = await self._new_engine().start()
        self.engines[self.config.region] = self.engine

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
            started = time.perf_counter()
            status, headers, body = await self._http(scope, receive)
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            self.account(scope, status, headers, body, started)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive) -> Response:
        """A request through ASGI: the body read from `receive`, a receive cancelled on disconnect."""
        if is_plain(scope):
            return await self.plain(scope)
        head = self.head(scope)
        try:
            body = await _read_body(receive, head.content_length)
        except SqsError as exc:
            return head.error(exc)
        handling = self.respond(scope, head, body)
        if head.is_receive(scope, body):
            return await _unless_disconnected(handling, receive)
        return await handling

    async def plain(self, scope: Scope) -> Response:
        """`/health` and `/metrics` (see `is_plain`)."""
        if scope["path"] == "/health":
            if self.engine is None or self.closing:
                return _json_response(503, {"status": "unavailable"})
            return _json_response(200, {"status": "ok"})
        return await self._metrics()

    def head(self, scope: Scope) -> RequestHead:
        """What the request's headers say, read once; a new request id; the action as far as the headers tell."""
        target = authorization = content_type = content_length = None
        for name, value in scope["headers"]:
            if name == b"x-amz-target":
                target = value
            elif name == b"authorization":
                authorization = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                content_length = value
        scope["scte.action"] = target.decode("latin-1").removeprefix(json_protocol.TARGET_PREFIX) if target else ""
        return RequestHead(target, authorization, content_type, content_length, _next_request_id())

    async def respond(self, scope: Scope, head: RequestHead, body: bytes) -> Response:
        """The response to a request whose body has been read (within `MAX_BODY_BYTES`)."""
        path: str = scope["path"]
        method: str = scope["method"]
        target, authorization, content_type = head.target, head.authorization, head.content_type
        request_id = head.request_id
        try:
            if path.startswith("/moto-api/") and self.config.test_mode and method == "POST":
                if path == "/moto-api/reset":
                    await self.reset()
                return _json_response(200, {"status": "ok"})
            capability = _capability_url(method, authorization, scope["query_string"])
            if capability is not None:
                body = b""  # the link's query is the whole request
            elif self.verifier is not None:
                raw_path = scope.get("raw_path") or b"/"
                key = self.verifier.verify(method, raw_path, scope["query_string"], scope["headers"], body)
                scope["scte.principal"] = self.keys.principal(key) if self.keys is not None else None
            if capability is None:
                region = self._region(authorization, scope["query_string"])
            else:
                region = capability or self.config.region
            if region not in self.engines and region != self.config.region:
                await self._open_region(region)
            scope["scte.region"] = region
            if target:
                if content_type is not None and not content_type.startswith(_JSON_CONTENT_TYPES):
                    raise unsupported_media_type(content_type.decode("latin-1"))
                return await self._json_request(scope, target.decode("latin-1"), body, request_id)
            if content_type is not None and body and not content_type.startswith(_FORM_CONTENT_TYPE):
                body = b""  # not a form: the query protocol reads the URL's parameters only
            return await self._query_request(scope, body, request_id)
        except SqsError as exc:
            return head.error(exc)
        except StoreClosed:
            return head.error(service_unavailable())
        except Exception:
            log.exception("internal error")
            return head.error(internal_error())

    def account(self, scope: Scope, status: int, headers: Headers, body: bytes, started: float) -> None:
        """After a response: the request counted for `/metrics` and its line in the request log."""
        action = scope.get("scte.action")
        if action is not None:
            self.metrics.count_request(action if status < 400 or action in ACTIONS else "other", status)
            if access_log.isEnabledFor(logging.INFO):
                _log_request(scope, status, headers, body, started)

    def _region(self, authorization: bytes | None, query_string: bytes) -> str:
        """The region of the request's SigV4 credential scope; the default region when there is none."""
        region = None
        if authorization is not None:
            region = auth.region_from_authorization(authorization)
        elif b"X-Amz-Credential=" in query_string:
            region = auth.region_from_query(query_string)
        if region is None or region == self.config.region or not valid_region(region):
            return self.config.region
        return region

    async def _metrics(self) -> Response:
        if self.closing:
            return _json_response(503, {"status": "unavailable"})
        body = await self.metrics.render(dict(self.engines))
        return 200, [(b"content-type", METRICS_CONTENT_TYPE)], body

    def _context(self, scope: Scope, engine: Engine) -> RequestContext:
        host = trace = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"x-amzn-trace-id":
                trace = value.decode("latin-1")
        if not host:
            host = f"{self.config.host}:{self.config.port}"
        base = f"{scope.get('scheme', 'http')}://{host}"
        if self.config.queue_urls == "region":
            base = f"{base}/queue/{engine.region}"
        # positional: a keyword call costs as much again as building the context
        ctx = scope["scte.ctx"] = RequestContext(engine, self.config.account_id, base, scope["path"])
        if trace:
            ctx.trace_header = trace
        return ctx

    async def _json_request(self, scope: Scope, target: str, body: bytes, request_id: str) -> Response:
        action_name = target[len(json_protocol.TARGET_PREFIX) :] if target.startswith("AmazonSQS.") else target
        scope["scte.action"] = action_name
        try:
            action = ACTIONS.get(action_name) if target.startswith(json_protocol.TARGET_PREFIX) else None
            if action is None:
                raise unknown_operation(action_name)
            params = json_protocol.check_params(action.schema, json_protocol.parse_body(body))
            region = await self._queue_region(scope, params)
            engine = self._engine(region)
            ctx = self._context(scope, engine)
            principal = scope.get("scte.principal")
            if principal is not None:
                authorize_sqs(principal, action_name, params, ctx)
            result = await action.handler(ctx, params)
            self.metrics.count_messages(region or self.config.region, ctx.queue, action_name, result)
            if action_name == "SendMessageBatch" and "Failed" in result and not result["Failed"]:
                del result["Failed"]  # AWS's JSON answer leaves out an empty Failed list
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
        scope["scte.action"] = form.get("Action", "")
        if sns_protocol.is_sns_request(scope, form):  # SNS shares the port: told apart by service/version
            return await sns_actions.dispatch(
                scope,
                form,
                request_id,
                functools.partial(self._engine, scope.get("scte.region")),
                fallback_url=f"http://{self.config.host}:{self.config.port}",
                test_mode=self.config.test_mode,
                principal=scope.get("scte.principal"),
            )
        action_name = form.get("Action", "")
        try:
            if not action_name:
                if scope["method"] == "GET":  # AWS: a bare GET names no operation at all
                    raise unknown_operation_404()
                raise missing_parameter("Action")
            action = ACTIONS.get(action_name)
            if action is None:
                if action_name == "GetCallerIdentity":  # STS: SDK tooling asks it first, of any endpoint
                    return self._caller_identity(request_id)
                raise unknown_operation(action_name)
            if action_name in _ACCOUNT_ACTIONS and _names_queue(scope["path"]):
                raise unknown_operation(action_name)  # AWS: an account-level action sent to a queue's URL
            params = query_protocol.params_from_form(action.schema, form)
            region = await self._queue_region(scope, params)
            engine = self._engine(region)
            ctx = self._context(scope, engine)
            principal = scope.get("scte.principal")
            if principal is not None:
                authorize_sqs(principal, action_name, params, ctx)
            result = await action.handler(ctx, params)
            self.metrics.count_messages(region or self.config.region, ctx.queue, action_name, result)
            return query_protocol.render(action_name, result, request_id)
        except SqsError as exc:
            return xml_error(exc, request_id)
        except StoreClosed:
            return xml_error(service_unavailable(), request_id)
        except Exception:
            log.exception("internal error in %s", action_name)
            return xml_error(internal_error(), request_id)

    async def _queue_region(self, scope: Scope, params: dict[str, Any]) -> str | None:
        """The region of the request: the one its queue URL names (`/queue/<region>/...`), else the one of
        its signature (`scte.region`). A queue URL's region wins: the URL is what names the queue."""
        region: str | None = scope.get("scte.region")
        named = url_region(params.get("QueueUrl") or scope["path"])
        if named is None or named == region:
            return region
        if not valid_region(named):
            raise queue_does_not_exist()
        if named not in self.engines:
            await self._open_region(named)
        scope["scte.region"] = named
        return named

    def _engine(self, region: str | None = None) -> Engine:
        """The engine of `region` (default: the default region's), open; 503 while shutting down."""
        engine = self.engine if region is None else self.engines.get(region)
        if engine is None or self.closing:
            raise service_unavailable()
        return engine

    def _caller_identity(self, request_id: str) -> Response:
        """STS GetCallerIdentity with the configured account: moto's suite and SDK tooling ask it first."""
        account = self.config.account_id
        body = (
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
            f"<GetCallerIdentityResult><UserId>{account}</UserId><Account>{account}</Account>"
            f"<Arn>arn:aws:iam::{account}:root</Arn></GetCallerIdentityResult>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        ).encode()
        headers: Headers = [(b"content-type", b"text/xml")]
        return 200, headers, body


# Actions of the account, not of a queue: AWS refuses them (InvalidAction) on a queue's URL.
_ACCOUNT_ACTIONS = frozenset(("CreateQueue", "ListQueues"))


def _names_queue(path: str) -> bool:
    """Whether a request path is a queue's (`/<account>/<name>` or `/queue/<region>/<account>/<name>`)."""
    parts = [p for p in path.split("/") if p]
    return len(parts) == 2 or (len(parts) == 4 and parts[0] == "queue")


# SNS's capability URLs: the SubscribeURL and UnsubscribeURL of its messages, unsigned GETs whose token or
# subscription ARN is the credential. Served without a signature even with `--auth strict`, as AWS does.
_CAPABILITY_ACTIONS = frozenset(("ConfirmSubscription", "Unsubscribe"))
_CAPABILITY_ARNS = {"ConfirmSubscription": "TopicArn", "Unsubscribe": "SubscriptionArn"}


def _capability_url(method: str, authorization: bytes | None, query_string: bytes) -> str | None:
    """For an unsigned `GET /?Action=ConfirmSubscription|Unsubscribe&...` (the links in SNS messages), the
    region to serve it in (the one of the ARN it names, else the default: ''); None for any other request."""
    if method != "GET" or authorization is not None or b"Action=" not in query_string:
        return None
    try:
        params = urllib.parse.parse_qs(query_string.decode("utf-8", "strict"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    actions = params.get("Action") or []
    if len(actions) != 1 or actions[0] not in _CAPABILITY_ACTIONS:
        return None
    if any(key.lower().startswith("x-amz-") for key in params):  # presigned: verified as such
        return None
    arn = (params.get(_CAPABILITY_ARNS[actions[0]]) or [""])[0].split(":")
    return arn[3] if len(arn) >= 6 and arn[2] == "sns" and valid_region(arn[3]) else ""


def _remove_database(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


async def _unless_disconnected(handling: Awaitable[Response], receive: Receive) -> Response:
    """Run a (possibly long-polling) receive, cancelled if the client goes away meanwhile.

    A cancelled receive hands back the messages it reserved (the engine releases them), so a
    consumer that disconnects mid-poll does not hide messages for a whole visibility timeout.
    """
    work = asyncio.ensure_future(handling)
    watch = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not work.done():
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        return 499, [], b""  # nobody is there to read it
    return work.result()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(receive: Receive, content_length: bytes | None) -> bytes:
    """The request body: at most `MAX_BODY_BYTES` (else 413), within `BODY_TIMEOUT_SECONDS` (else 408)."""
    if content_length is not None and (not content_length.isdigit() or int(content_length) > MAX_BODY_BYTES):
        raise request_too_large(MAX_BODY_BYTES)
    try:
        async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
            message = await receive()
            body: bytes = message.get("body", b"")
            if not message.get("more_body"):
                return body
            chunks = [body]
            size = len(body)
            while message.get("more_body"):
                message = await receive()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise request_too_large(MAX_BODY_BYTES)
                chunks.append(chunk)
            return b"".join(chunks)
    except TimeoutError:
        raise request_timeout() from None


def _log_request(scope: Scope, status: int, headers: Headers, body: bytes, started: float) -> None:
    """One JSON line: time, request id, action, region, queue, status, error code, duration in ms."""
    request_id = error = None
    for name, value in headers:
        if name == b"x-amzn-requestid":
            request_id = value.decode()
        elif name == b"x-amzn-query-error":
            error = value.decode().partition(";")[0]
    if status >= 400 and error is None:
        start = body.find(b"<Code>")
        if start >= 0:
            error = body[start + 6 : body.find(b"</Code>", start)].decode("utf-8", "replace")
    ctx = scope.get("scte.ctx")
    record = {
        # milliseconds and microseconds truncated (float(int) / 1000) rather than round(x, 3): a third of the cost
        "time": time.time_ns() // 1_000_000 / 1000,
        "request_id": request_id,
        "action": scope.get("scte.action") or None,
        "region": scope.get("scte.region"),
        "queue": ctx.queue if ctx is not None else None,
        "status": status,
        "error": error,
        "duration_ms": int((time.perf_counter() - started) * 1_000_000) / 1000,
    }
    line = orjson.dumps(record).decode()
    handlers = access_log.handlers
    if len(handlers) == 1 and not access_log.filters:
        # The line is the whole record: a handler that takes lines as they are (serve.BufferedLineHandler)
        # is given it without a LogRecord (findCaller walks the stack: most of a request line's cost).
        add_line = getattr(handlers[0], "add_line", None)
        if add_line is not None and add_line(line):
            return
    access_log.info(line)


def create_app(config: ServerConfig | None = None) -> SqsApp:
    return SqsApp(config or ServerConfig())
