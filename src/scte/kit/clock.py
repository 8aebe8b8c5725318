"""The platform clock: the wall clock, optionally shifted so that tests can run a system months ahead.

Every rule that depends on "today" (membership grace, certification expiry, reminders) asks a
`Clock`, never `datetime.now()`. The offset comes from settings, plus an optional file re-read when
its modification time changes, so an end-to-end test moves the clock of running processes by
writing one number.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

__all__ = ["Clock", "FixedClock"]


class Clock:
    """Wall-clock time plus `offset_seconds` plus the number in `offset_file` (when it exists)."""

    def __init__(self, offset_seconds: float = 0.0, offset_file: Path | None = None) -> None:
        self.offset_seconds = offset_seconds
        self.offset_file = offset_file
        self._file_state: tuple[float, float] | None = None  # (mtime, offset)

    def _file_offset(self) -> float:
        if self.offset_file is None:
            return 0.0
        try:
            mtime = self.offset_file.stat().st_mtime
        except OSError:
            return 0.0
        if self._file_state is None or self._file_state[0] != mtime:
            try:
                value = float(self.offset_file.read_text(encoding="utf-8").strip() or 0)
            except (OSError, ValueError):
                value = 0.0
            self._file_state = (mtime, value)
        return self._file_state[1]

    def timestamp(self) -> float:
        """Seconds since the epoch (what `SchedulerLoop(clock=...)` takes)."""
        return time.time() + self.offset_seconds + self._file_offset()

    def now(self) -> datetime:
        """An aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def today(self) -> date:
        """The current UTC date."""
        return self.now().date()


class FixedClock(Clock):
    """A clock that stands still until moved (unit tests)."""

    def __init__(self, at: datetime) -> None:
        super().__init__()
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.timestamp()

    def timestamp(self) -> float:
        return self._at

    def advance(self, seconds: float) -> None:
        self._at += seconds

    def set(self, at: datetime) -> None:
        self._at = at.timestamp()
