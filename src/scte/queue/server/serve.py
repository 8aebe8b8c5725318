"""Run the SQS server with uvicorn (httptools and uvloop when installed, as `uvicorn[standard]` pins).

Shutdown (SIGINT/SIGTERM) is graceful: the listening socket closes first, then the engine drains, so
pending long polls answer at once (empty) instead of holding shutdown for up to 20 s, requests being
served finish, and everything acknowledged is committed before the process exits.
"""

from __future__ import annotations

import logging
import socket

import uvicorn

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


def build_server(config: ServerConfig, *, log_level: str = "warning", access_log: bool = False) -> DrainingServer:
    app = SqsApp(config)
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=75,  # SDK connection pools keep connections longer than uvicorn's default 5 s
        server_header=False,
    )
    return DrainingServer(uv_config, app)


def serve(config: ServerConfig, *, log_level: str = "warning", access_log: bool = False) -> None:
    """Serve until interrupted."""
    build_server(config, log_level=log_level, access_log=access_log).run()
