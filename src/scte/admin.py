"""`scte admin`: staff accounts of an install, run on its host against its data directory.

No install shares a known credential: the first start creates the staff account with a random
password that `scte up` shows once, and these commands make more staff accounts or set a new random
password for an account, each shown once by the command and stored only as its argon2id hash.
They write the members database directly (and its outbox, so every service hears of a new account as
of anyone who registered); they work whether or not the platform is running.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from scte.kit.settings import Settings

__all__ = ["AdminError", "Credentials", "create_staff", "new_password", "reset_password"]

STAFF_ROLES = ["member", "staff"]


class AdminError(Exception):
    """The command cannot do what was asked; the message says why."""


@dataclass(frozen=True)
class Credentials:
    member_id: str
    email: str
    password: str
    """Shown once to whoever ran the command; only its hash is stored."""


def new_password() -> str:
    """A random password (144 bits, URL-safe: easy to copy from a terminal)."""
    return secrets.token_urlsafe(18)


def _email(email: str) -> str:
    from scte.services.members.domain import MembersError, normalize_email

    try:
        return normalize_email(email)
    except MembersError as exc:
        raise AdminError(str(exc)) from None


async def create_staff(data_dir: Path, email: str, display_name: str = "SCTE Staff") -> Credentials:
    """A new staff account with a random password; `AdminError` if the address has an account."""
    import asyncio

    from scte.bus.publisher import Publisher
    from scte.bus.topology import Topology
    from scte.contracts.members import MemberRegistered
    from scte.kit.db import create_engine, sessionmaker, upgrade
    from scte.platform import TOPICS
    from scte.services.members.db import members
    from scte.services.members.domain import MembersError, Profile, validate_profile
    from scte.services.members.hashing import hash_password

    address = _email(email)
    try:
        name = validate_profile(Profile("new", address, display_name)).display_name
    except MembersError as exc:
        raise AdminError(str(exc)) from None
    url = Settings(data_dir=data_dir).database_url("members")
    await upgrade("scte.services.members", url)
    password = new_password()
    password_hash = await asyncio.to_thread(hash_password, password)
    member_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        async with sessionmaker(engine)() as session, session.begin():
            if await session.scalar(select(members.c.id).where(members.c.email == address)) is not None:
                raise AdminError(f"{address} has an account already; `scte admin reset-password {address}`")
            await session.execute(
                members.insert().values(
                    id=member_id,
                    email=address,
                    password_hash=password_hash,
                    display_name=name,
                    city=None,
                    country=None,
                    listed_in_directory=False,
                    roles=STAFF_ROLES,
                    company_id=None,
                    status="prospect",
                    designations=[],
                    registered_at=now,
                    updated_at=now,
                )
            )
            publisher = Publisher("members", Topology(TOPICS))
            await publisher.publish(
                session,
                MemberRegistered(member_id=member_id, email=address, display_name=name, registered_at=now),
                topic="members",
            )
    finally:
        await engine.dispose()
    return Credentials(member_id, address, password)


async def reset_password(data_dir: Path, email: str) -> Credentials:
    """A new random password for the account of `email` (any account: a member locked out, too)."""
    import asyncio

    from scte.kit.db import create_engine, sessionmaker, upgrade
    from scte.services.members.db import members
    from scte.services.members.hashing import hash_password

    address = _email(email)
    url = Settings(data_dir=data_dir).database_url("members")
    await upgrade("scte.services.members", url)
    password = new_password()
    password_hash = await asyncio.to_thread(hash_password, password)
    engine = create_engine(url)
    try:
        async with sessionmaker(engine)() as session, session.begin():
            member_id = await session.scalar(select(members.c.id).where(members.c.email == address))
            if member_id is None:
                raise AdminError(f"no account has the address {address}")
            await session.execute(
                update(members)
                .where(members.c.id == member_id)
                .values(password_hash=password_hash, updated_at=datetime.now(UTC))
            )
    finally:
        await engine.dispose()
    return Credentials(str(member_id), address, password)
