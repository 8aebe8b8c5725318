"""Alembic environment of scte.services.commerce (run by scte.kit.db.run_migrations)."""

from scte.kit.db import run_alembic_env

run_alembic_env("scte.services.commerce.db")
