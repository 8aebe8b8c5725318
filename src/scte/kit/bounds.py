"""The types of what a client sends, stated in the API models (and so in OpenAPI) instead of found by
the database or coerced by pydantic's lax mode.

- Integers are bounded: an unbounded `capacity` of 2^63 reached SQLite as an overflow and PostgreSQL's
  32-bit INTEGER columns refuse anything past 2^31 - 1; both answered 500.
- Integers and booleans in a JSON body are strict: lax mode took `false` for 0 and `"3"` for 3, which
  the document says are not integers (the fuzzing gate's negative cases).
- Dates and instants are ISO 8601 text: lax mode read `0` or `0.5` as a Unix timestamp (1970-01-01).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, Field, Strict

__all__ = ["INT_MAX", "Count", "IsoDate", "IsoInstant", "PositiveCount", "StoredCents", "StrictFlag"]

INT_MAX = 2**31 - 1
"""The largest value of an INTEGER column on PostgreSQL (int4), the narrowest store we write to."""

Count = Annotated[int, Strict(), Field(ge=0, le=INT_MAX)]
"""A count or amount of something (answers, units) that may be zero."""

PositiveCount = Annotated[int, Strict(), Field(ge=1, le=INT_MAX)]
"""A count that is at least one (seats, questions)."""

StoredCents = Annotated[int, Strict(), Field(gt=0, le=INT_MAX)]
"""A positive amount of money in cents kept in an INTEGER column (at most $21,474,836.47)."""

StrictFlag = Annotated[bool, Strict()]
"""true or false, not 0/1 or "yes"."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, date):
            return value
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"must be an ISO 8601 {what}")
        return value

    return check


IsoDate = Annotated[date, BeforeValidator(_iso(_ISO_DATE, "date (YYYY-MM-DD)"))]
"""A calendar day as YYYY-MM-DD."""

IsoInstant = Annotated[AwareDatetime, BeforeValidator(_iso(_ISO_INSTANT, "date and time with a zone"))]
"""An instant as ISO 8601 text with its zone (2026-03-10T12:00:00Z)."""
