"""scte.kit: what every SCTE service is built from.

`settings` (configuration from `SCTE_*` variables), `clock` (the platform's notion of now), `db`
(engines, sessions, Alembic migrations), `auth` (Ed25519 JWTs, principals, role checks), `app` (the
FastAPI factory with uniform errors and request dependencies), `runtime` (one process running a
service's API, consumer, outbox relay and scheduler) and `testing` (databases for integration tests).
"""
