"""Abuse limits of sign-in and registration, with the `limits` library (moving windows, in memory).

- Sign-in, per account: 5 failed attempts in 15 minutes, then every attempt on that account, the
  right password included, is answered 429 until the window has room again. An attempt counts
  before its password is checked (so 32 concurrent guesses cannot all slip in) and a success clears
  the account's count.
- Sign-in, per client address: 30 failed attempts in 15 minutes (guessing across many accounts),
  and 120 attempts a minute whatever their outcome (each costs a hash).
- Registration, per client address: 50 a hour.

The client address is the visitor's, as the gateway states it (scte.kit.forwarding). Counts live in
the members process: a restart forgets them, which gives an attacker one fresh window per restart at
most. Each limit is set by an environment variable (`SCTE_MEMBERS_SIGNIN_PER_ACCOUNT="5/15minutes"`).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from pydantic_settings import BaseSettings, SettingsConfigDict

from scte.kit.app import ErrorOut

__all__ = ["LIMITED_RESPONSES", "AbuseLimits", "LimitSettings", "RateLimited"]

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}}
LIMITED_RESPONSES: dict[int | str, dict[str, object]] = {
    429: {
        "model": ErrorOut,
        "description": "Too many attempts from this address or on this account",
        "headers": _RETRY_AFTER,
    },
    503: {"model": ErrorOut, "description": "Too many passwords being checked right now", "headers": _RETRY_AFTER},
}
"""The OpenAPI `responses` of a route that checks or hashes a password (the limits and the pool)."""


class LimitSettings(BaseSettings):
    """The limits, in the `limits` notation ("5/15minutes"); the hashing pool's size."""

    model_config = SettingsConfigDict(env_prefix="SCTE_MEMBERS_", extra="ignore", frozen=True)

    signin_per_account: str = "5/15minutes"
    """Failed sign-ins per account."""
    signin_failures_per_address: str = "30/15minutes"
    signin_per_address: str = "120/minute"
    """Sign-in attempts per client address, failed or not."""
    register_per_address: str = "50/hour"
    hash_workers: int | None = None
    """Threads hashing passwords (default: the cores, at most 4)."""
    hash_queue: int = 16
    """Hashes waiting for a thread before a sign-in is answered 503."""
    hash_max_wait: float = 2.0
    """Seconds a hash may expect to wait for a thread (at the recent pace) before it is answered 503."""


class RateLimited(Exception):
    """Too many attempts: answered 429 with `Retry-After: retry_after`."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AbuseLimits:
    """The sign-in and registration limits of one members process."""

    def __init__(self, settings: LimitSettings | None = None) -> None:
        config = settings or LimitSettings()
        self.settings = config
        self.signin_account: RateLimitItem = parse(config.signin_per_account)
        self.signin_failures_address: RateLimitItem = parse(config.signin_failures_per_address)
        self.signin_address: RateLimitItem = parse(config.signin_per_address)
        self.register_address: RateLimitItem = parse(config.register_per_address)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        stats = await self._limiter.get_window_stats(item, *keys)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def _refuse(self, item: RateLimitItem, message: str, *keys: str) -> RateLimited:
        return RateLimited(message, await self._retry_after(item, *keys))

    async def before_sign_in(self, account: str | None, address: str) -> None:
        """Count a sign-in attempt; `RateLimited` if the account or the address has no room left.

        `account` is the normalised e-mail address (None: not an address, so no account to protect)."""
        if not await self._limiter.test(self.signin_failures_address, "signin-failed", address):
            raise await self._refuse(
                self.signin_failures_address,
                "too many failed sign-ins from your address; try again later",
                "signin-failed",
                address,
            )
        if account is not None and not await self._limiter.hit(self.signin_account, "account", account):
            raise await self._refuse(
                self.signin_account,
                "too many failed sign-ins for this account; try again later or reset your password",
                "account",
                account,
            )
        if not await self._limiter.hit(self.signin_address, "signin", address):
            raise await self._refuse(
                self.signin_address, "too many sign-ins from your address; slow down", "signin", address
            )

    async def sign_in_failed(self, address: str) -> None:
        await self._limiter.hit(self.signin_failures_address, "signin-failed", address)

    async def sign_in_succeeded(self, account: str) -> None:
        """The right password: the account's failed attempts are forgiven."""
        await self._limiter.clear(self.signin_account, "account", account)

    async def before_registration(self, address: str) -> None:
        if not await self._limiter.hit(self.register_address, "register", address):
            raise await self._refuse(
                self.register_address, "too many registrations from your address; try again later", "register", address
            )
