"""HTTP/1.1 for the SQS server: an asyncio protocol (httptools parsing) calling the app directly.

uvicorn still runs the process (sockets, signals, lifespan, the graceful shutdown); this protocol replaces
its ASGI request cycle, which cost more CPU than our own request handling: per request it built an
`asyncio.Event`, ASGI message dictionaries, a scope through a middleware, a keep-alive timer, an
`asyncio.timeout` around the body and, for a receive, two extra tasks watching for a disconnect. Here a
request is parsed, its whole body collected, and one task runs `SqsApp.respond`; the response (head and body)
leaves in one `write`. What the ASGI path did, this does too:

- body limits: a `Content-Length` over `MAX_BODY_BYTES`, or a chunked body growing past it, is answered 413
  at once (the rest of the body is discarded); a body not complete within `BODY_TIMEOUT_SECONDS` is 408 and
  the connection closes; `Expect: 100-continue` is answered when the body is wanted;
- a ReceiveMessage whose client disconnects is cancelled (the engine hands back what it reserved), answered
  499 in the metrics and request log;
- keep-alive (closing after `timeout_keep_alive` idle seconds), `Connection: close` and HTTP/1.0, pipelined
  requests answered in order (reading pauses meanwhile), write back-pressure, `HEAD` without a body;
- uvicorn's shutdown: `shutdown()` closes an idle connection at once, a busy one after its response; request
  tasks are in `server_state.tasks`, which uvicorn waits for (and cancels past the grace period);
- uvicorn's default headers (`date`) and its proxy-headers rule (`X-Forwarded-Proto` from a trusted address
  sets the scheme of queue URLs); malformed HTTP is a 400 `text/plain` and the connection closes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import urllib.parse
from typing import Any

import httptools
import uvicorn
from uvicorn.middleware.proxy_headers import _TrustedHosts
from uvicorn.protocols.http.httptools_impl import STATUS_LINE
from uvicorn.server import ServerState

from scte.queue.server.app import (
    BODY_TIMEOUT_SECONDS,
    MAX_BODY_BYTES,
    RequestHead,
    Scope,
    SqsApp,
    is_plain,
)
from scte.queue.server.errors import Response, internal_error, request_timeout, request_too_large

log = logging.getLogger("scte.queue.server")

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BAD_REQUEST_TEXT = b"Invalid HTTP request received."
_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
    b"connection: close\r\n\r\n%b" % (len(_BAD_REQUEST_TEXT), _BAD_REQUEST_TEXT)
)
_NOT_YET = -1.0  # `body_since` of a request whose body is still coming, before the clock is read

# A request ready to run: scope, head (None for /health and /metrics), body, keep-alive, start time,
# and the response when it is already decided (413, 408) and only waits for its turn.
_Pending = tuple[Scope, RequestHead | None, bytes, bool, float, Response | None]


class SqsHttpProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection of the SQS server. Built by uvicorn (`Config(http=SqsHttpProtocol)`)."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        app = config.app
        if not isinstance(app, SqsApp):
            raise TypeError("SqsHttpProtocol serves an SqsApp")
        self.app = app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.keep_alive_seconds = float(config.timeout_keep_alive)
        self.trusted = _TrustedHosts(config.forwarded_allow_ips) if config.proxy_headers else None
        self.parser = httptools.HttpRequestParser(self)
        # A response to the first request of a pipeline even when the client closes after sending (as uvicorn).
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.scheme = "http"
        self.trust_proxy = False
        # the connection
        self.task: asyncio.Task[None] | None = None  # the request being answered
        self.cancellable = False  # that request is a receive: cancelled if the client goes away
        self.pipeline: collections.deque[_Pending] = collections.deque()
        self.reading_paused = False
        self.writing_paused = False
        self.lost = False
        self.closing = False  # shutting down: close after the response in hand
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.default_headers: list[tuple[bytes, bytes]] | None = None
        self.default_head = b""
        # the request being parsed
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0
        self.expect_continue = False
        self.scope: Scope = {}
        self.head: RequestHead | None = None
        self.started = 0.0
        self.answered = False  # answered before its body was read (413, 408): the rest is discarded
        self.body_since: float | None = None  # when its body started to be awaited (None: not awaited)

    # -- connection -------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP transport (uvloop's: no asyncio subclass)
        self.connections.add(self)  # type: ignore[arg-type]  # uvicorn types it with its own protocols
        if transport.get_extra_info("sslcontext"):
            self.scheme = "https"
        if self.trusted is not None:
            peer = transport.get_extra_info("peername")
            host = peer[0] if isinstance(peer, tuple | list) and peer else None
            self.trust_proxy = host in self.trusted
        self.idle_since = self.loop.time()
        self.timer = self.loop.call_at(self.idle_since + self.keep_alive_seconds, self._tick)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.pipeline.clear()
        if self.task is not None and self.cancellable:
            self.task.cancel()  # a long poll nobody waits for: the engine hands its messages back

    def eof_received(self) -> bool | None:
        return None  # close once the responses in hand are written (asyncio's default for a Protocol)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.task is None and self.pipeline:
            self._next()

    def shutdown(self) -> None:
        """uvicorn's shutdown: close now when idle, else after the response in hand."""
        self.closing = True
        if self.task is None and not self.pipeline and self.body_since is None:
            self.transport.close()

    def _tick(self) -> None:
        """The connection's one timer: a body too slow (408) or a keep-alive connection idle too long."""
        self.timer = None
        if self.lost:
            return
        now = self.loop.time()
        if self.body_since is not None and self.body_since != _NOT_YET:
            deadline = self.body_since + BODY_TIMEOUT_SECONDS
            if now >= deadline:
                self._timed_out()
                return
        elif self.task is None and not self.pipeline:
            deadline = self.idle_since + self.keep_alive_seconds
            if now >= deadline:
                self.transport.close()
                return
        else:
            deadline = now + self.keep_alive_seconds  # busy: look again later
        self.timer = self.loop.call_at(deadline, self._tick)

    def _timed_out(self) -> None:
        head = self.head
        response = head.error(request_timeout()) if head is not None else (408, [], b"")
        self.answered = True
        self.body_since = None
        self.body = []
        self._answer((self.scope, head, b"", False, self.started, response))

    # -- parsing (httptools callbacks) ------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no protocol upgrades here: the request was answered as plain HTTP
        except httptools.HttpParserError:
            log.warning("Invalid HTTP request received.")
            self.transport.write(_BAD_REQUEST)
            self.transport.close()
            return
        if self.body_since == _NOT_YET:  # a body still coming after this chunk: the 408 clock starts
            self.body_since = since = self.loop.time()
            if self.timer is None or self.timer.when() > since + BODY_TIMEOUT_SECONDS:
                if self.timer is not None:
                    self.timer.cancel()
                self.timer = self.loop.call_at(since + BODY_TIMEOUT_SECONDS, self._tick)

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.body = []
        self.size = 0
        self.expect_continue = False
        self.answered = False
        self.started = time.perf_counter()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        query: bytes
        if self.url == b"/":  # every SDK's POST: nothing to parse
            raw_path, path, query = b"/", "/", b""
        else:
            url = httptools.parse_url(self.url)
            raw_path = url.path
            path = raw_path.decode("ascii")
            if "%" in path:
                path = urllib.parse.unquote(path)
            query = url.query or b""
        scheme = self.scheme
        if self.trust_proxy:
            for name, value in self.headers:
                if name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").strip()
                    if proto in ("http", "https"):
                        scheme = proto
        self.scope = scope = {
            "type": "http",
            "http_version": parser.get_http_version(),
            "method": parser.get_method().decode("ascii"),
            "scheme": scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "headers": self.headers,
        }
        self.body_since = _NOT_YET
        if is_plain(scope):
            self.head = None
            return
        self.head = head = self.app.head(scope)
        length = head.content_length
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            self._too_large()
        elif self.expect_continue:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self.answered:
            return
        self.size += len(body)
        if self.size > MAX_BODY_BYTES:
            self._too_large()
            return
        self.body.append(body)

    def _too_large(self) -> None:
        head = self.head
        response = head.error(request_too_large(MAX_BODY_BYTES)) if head is not None else (413, [], b"")
        self.answered = True
        self.body_since = None
        self.body = []
        self._answer((self.scope, head, b"", self.parser.should_keep_alive(), self.started, response))

    def on_message_complete(self) -> None:
        self.body_since = None
        if self.answered:
            return
        body = self.body
        request: _Pending = (
            self.scope,
            self.head,
            (body[0] if len(body) == 1 else b"".join(body)) if body else b"",
            self.parser.should_keep_alive(),
            self.started,
            None,
        )
        if self.task is None and not self.pipeline and not self.writing_paused:
            self._start(request)
        else:
            self.pipeline.append(request)
            if not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()

    # -- answering --------------------------------------------------------------------------------------

    def _answer(self, request: _Pending) -> None:
        """A response decided while reading (413, 408): written now, or after the responses before it."""
        if self.task is None and not self.pipeline:
            self._start(request)
        else:
            self.pipeline.append(request)

    def _start(self, request: _Pending) -> None:
        scope, head, body = request[0], request[1], request[2]
        self.cancellable = head is not None and request[5] is None and head.is_receive(scope, body)
        task = self.task = self.loop.create_task(self._run(request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, request: _Pending) -> None:
        scope, head, body, keep_alive, started, response = request
        try:
            if response is None:
                response = await (self.app.plain(scope) if head is None else self.app.respond(scope, head, body))
        except asyncio.CancelledError:
            if not self.lost:
                raise  # uvicorn cancelling at the end of the grace period
            response = (499, [], b"")  # the client went away during its long poll: nobody to answer
        except Exception:
            log.exception("internal error")
            response = head.error(internal_error()) if head is not None else (500, [], b"")
        status, headers, payload = response
        try:
            if not self.lost:
                self._write(scope, status, headers, payload, keep_alive)
            self.app.account(scope, status, headers, payload, started)
        finally:
            self.task = None
            self.server_state.total_requests += 1
            self._next()

    def _next(self) -> None:
        if self.lost:
            return
        if self.pipeline:
            if not self.writing_paused:
                self._start(self.pipeline.popleft())
            return
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        self.idle_since = self.loop.time()
        if self.closing and self.body_since is None:
            self.transport.close()

    def _write(self, scope: Scope, status: int, headers: list[tuple[bytes, bytes]], body: bytes, keep: bool) -> None:
        """The whole response in one write (one TCP segment for a small one, one syscall)."""
        default = self.server_state.default_headers
        if default is not self.default_headers:  # uvicorn renews them (the date) once a second
            self.default_headers = default
            self.default_head = b"".join(b"%s: %s\r\n" % pair for pair in default)
        parts = [STATUS_LINE[status], self.default_head]
        for name, value in headers:
            if b"\n" in value or b"\r" in value:  # never let a value split the head
                log.error("invalid header value %r in a %d response", value, status)
                status, headers, body = 500, [], b""
                parts = [STATUS_LINE[500], self.default_head]
                break
            parts.append(b"%s: %s\r\n" % (name, value))
        keep = keep and not self.closing
        parts.append(
            b"content-length: %d\r\n\r\n" % len(body)
            if keep
            else b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        if scope["method"] != "HEAD":
            parts.append(body)
        self.transport.write(b"".join(parts))
        if not keep:
            self.transport.close()
