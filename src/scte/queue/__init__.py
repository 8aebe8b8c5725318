"""scte.queue: a durable message broker on SQLite with the semantics of AWS SQS.

The engine (`scte.queue.engine.Engine`) is the in-process API; the wire server and the bus's
in-process transport both sit on it.
"""

from scte.queue.clock import Clock, ManualClock, SystemClock
from scte.queue.engine import Engine, EngineConfig
from scte.queue.errors import SqsError

__all__ = ["Clock", "Engine", "EngineConfig", "ManualClock", "SqsError", "SystemClock"]
