"""Bounds of the integers a client may send, stated in the API models (and so in OpenAPI) instead of
found by the database: an unbounded `capacity` of 2^63 reached SQLite as an overflow and PostgreSQL's
32-bit INTEGER columns refuse anything past 2^31 - 1; both answered 500. A model field built from these
refuses such a value with a 422 before any code runs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = ["INT_MAX", "Count", "PositiveCount", "StoredCents"]

INT_MAX = 2**31 - 1
"""The largest value of an INTEGER column on PostgreSQL (int4), the narrowest store we write to."""

Count = Annotated[int, Field(ge=0, le=INT_MAX)]
"""A count or amount of something (answers, units) that may be zero."""

PositiveCount = Annotated[int, Field(ge=1, le=INT_MAX)]
"""A count that is at least one (seats, questions)."""

StoredCents = Annotated[int, Field(gt=0, le=INT_MAX)]
"""A positive amount of money in cents kept in an INTEGER column (at most $21,474,836.47)."""
