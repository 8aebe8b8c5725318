"""The SQS wire server: the engine over the SQS JSON and query protocols, as an ASGI app on uvicorn."""

from scte.queue.server.app import SqsApp, create_app
from scte.queue.server.config import ServerConfig

__all__ = ["ServerConfig", "SqsApp", "create_app"]
