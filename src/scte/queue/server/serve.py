"""Run the SQS server with uvicorn (httptools and uvloop when installed, as `uvicorn[standard]` pins).

Shutdown (SIGINT/SIGTERM) is graceful: the listening socket closes first, then the engine drains, so
pending long polls answer at once (empty) instead of holding shutdown for up to 20 s, requests being
served finish, and everything acknowledged is committed before the process exits.

Requests are served by `http.SqsHttpProtocol` (httptools parsing, the app called directly, each response in
one write) rather than uvicorn's ASGI request cycle; uvicorn runs the sockets, signals, lifespan and shutdown.
That protocol imports uvicorn's internals: with an untested uvicorn or httptools release, or
`SCTE_SPEED_PATHS=off`, uvicorn's own ASGI cycle serves the app instead (`scte.speed_paths.QUEUE_HTTP`).
uvloop sets TCP_NODELAY on every connection, so nothing waits for a delayed ACK.
Request log lines are buffered and written together every 0.2 s instead of one write per request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from typing import TextIO

import uvicorn

from scte import speed_paths
from scte.queue.server.app import SqsApp
from scte.queue.server.config import ServerConfig

log = logging.getLogger("scte.queue.server")


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining the engine as soon as shutdown starts."""

    def __init__(self, config: uvicorn.Config, app: SqsApp) -> None:
        super().__init__(config)
        self.sqs_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # accept nothing new while draining
        await self.sqs_app.drain()
        await super().shutdown(sockets)


class BufferedLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that collects lines and writes them together every `interval` seconds (and at exit,
    through `logging.shutdown`), instead of one write and flush per line."""

    def __init__(self, stream: TextIO, interval: float = 0.2, max_lines: int = 2000) -> None:
        super().__init__(stream)
        self.interval = interval
        self.max_lines = max_lines
        self._lines: list[str] = []
        threading.Thread(target=self._flusher, name="log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:  # called under self.lock
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        if len(self._lines) >= self.max_lines:
            self._drain()

    def add_line(self, line: str) -> bool:
        """Take `line` as `emit` would take an INFO record whose message it is; False (nothing taken) when this
        handler would treat such a record otherwise (its level, filters, or a formatter adding to the message)."""
        if self.level > logging.INFO or self.filters or self.formatter is None or self.formatter._fmt != "%(message)s":
            return False
        with self.lock:  # type: ignore[union-attr]
            self._lines.append(line)
            if len(self._lines) >= self.max_lines:
                self._drain()
        return True

    def _drain(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._drain()

    def _flusher(self) -> None:
        while True:
            time.sleep(self.interval)
            if self._lines:
                try:
                    self.flush()
                except Exception:  # a closed stream at exit
                    return


def configure_logging(log_level: str) -> None:
    """The server's logs on stderr: request lines (`scte.queue.server.access`) are bare JSON, one per line."""
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {log_level!r}")
    server_log = logging.getLogger("scte.queue.server")
    server_log.setLevel(level)
    if not server_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        server_log.addHandler(handler)
    access = logging.getLogger("scte.queue.server.access")
    access.propagate = False
    if not access.handlers:
        lines = BufferedLineHandler(sys.stderr)
        lines.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(lines)


def http_protocol() -> type[asyncio.Protocol] | str:
    """`SqsHttpProtocol` when its speed path is on; otherwise uvicorn's own HTTP protocol ("auto")."""
    if not speed_paths.enabled(speed_paths.QUEUE_HTTP):
        log.info("HTTP on uvicorn's own protocol (speed path queue_http off)")
        return "auto"
    try:
        from scte.queue.server.http import SqsHttpProtocol
    except ImportError as error:  # a tested release always has these names; be safe with a broken install
        log.warning("speed path queue_http off: %s; using uvicorn's ASGI request cycle", error)
        return "auto"
    return SqsHttpProtocol


def build_server(config: ServerConfig, *, log_level: str = "info", access_log: bool = False) -> DrainingServer:
    """uvicorn serving the app; `log_level` applies to the request log (JSON lines, INFO) and to uvicorn."""
    configure_logging(log_level)
    app = SqsApp(config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        lifespan="on",
        log_level=log_level.lower(),
        access_log=access_log,  # uvicorn's own; the app writes one JSON line per request instead
        timeout_graceful_shutdown=30,
        timeout_keep_alive=75,  # SDK connection pools keep connections longer than uvicorn's default 5 s
        server_header=False,
        http=http_protocol(),  # our HTTP/1.1 protocol calling the app directly (see http.py), when on
    )
    return DrainingServer(uv_config, app)


def serve(config: ServerConfig, *, log_level: str = "info", access_log: bool = False) -> None:
    """Serve until interrupted."""
    build_server(config, log_level=log_level, access_log=access_log).run()
