"""The policy a new password must meet (registration, change, reset).

It follows NIST SP 800-63B: length matters and composition rules do not. A new password has at least
12 characters, is taken exactly as typed (never trimmed), and zxcvbn must estimate it hard to guess
(score 3: about 10^8 guesses), both as a whole and once the member's own e-mail address and name are
taken out of it, so `abababababab`, `P@ssw0rd2024` and `JaneDoe12345` are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["ESTIMATE_MAX_LENGTH", "MAX_LENGTH", "MIN_LENGTH", "MIN_SCORE", "password_problems", "user_inputs"]

MIN_LENGTH = 12
MAX_LENGTH = 128
MIN_SCORE = 3
"""zxcvbn's score (0-4) a new password needs: 3 is "safely unguessable" (about 10^8 guesses)."""
ESTIMATE_MAX_LENGTH = 72
"""zxcvbn's own input limit: its cost grows with the length (70 ms at 72 characters), and a strong
start is strong whatever follows it."""


def user_inputs(email: str = "", display_name: str = "") -> list[str]:
    """The words of the member's own e-mail address and name, which a password must not be built from."""
    local, _, domain = email.lower().partition("@")
    words = {local, *re.split(r"[^0-9a-z]+", local), *domain.split(".")[:-1]}
    name = display_name.lower()
    words.update({"".join(name.split()), *name.split()})
    return sorted((w for w in words if len(w) >= 3), key=len, reverse=True)


def _without(password: str, words: Iterable[str]) -> str:
    rest = password.lower()
    for word in words:
        rest = rest.replace(word, "")
    return rest


def zxcvbn(password: str, user_inputs: list[str] | None = None) -> Any:
    """zxcvbn's estimate. Imported on the first new password, not with the service: its word lists
    take about 14 MB, which a process that sets no password (most of its life) does without."""
    from zxcvbn import zxcvbn as estimate

    return estimate(password, user_inputs=user_inputs)


def password_problems(password: str, email: str = "", display_name: str = "") -> list[str]:
    """What is wrong with a new password (empty: acceptable). Blocking (about 70 ms at worst): call
    it in a worker thread from an async route."""
    if len(password) < MIN_LENGTH:
        return [f"use at least {MIN_LENGTH} characters"]
    if len(password) > MAX_LENGTH:
        return [f"use at most {MAX_LENGTH} characters"]
    inputs = user_inputs(email, display_name)
    estimate = zxcvbn(password[:ESTIMATE_MAX_LENGTH], user_inputs=inputs)
    if estimate["score"] < MIN_SCORE:
        warning = str(estimate["feedback"].get("warning") or "").rstrip(".")
        return ["this password is too easy to guess" + (f" ({warning})" if warning else "")]
    rest = _without(password[:ESTIMATE_MAX_LENGTH], inputs)
    if len(rest) < MIN_LENGTH or zxcvbn(rest)["score"] < MIN_SCORE:
        return ["do not build your password from your e-mail address or name"]
    return []
