"""scte.bus: the messaging SDK every SCTE service is built on.

Typed events, publish/subscribe over topics and queues, consumers with retries, dead letters,
idempotent handling (inbox) and a transactional outbox, on the embedded broker (in-process or over
HTTP) and on AWS SQS/SNS alike. `scte.bus` knows nothing of any service; `scte.queue` knows nothing
of `scte.bus`.
"""
