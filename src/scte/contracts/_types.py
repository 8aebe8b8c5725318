"""Field types shared by the message catalogue, so every event spells ids, money and time alike.

Money is integer cents with an ISO 4217 currency: floats cannot hold cents exactly. Times are aware
datetimes normalised to UTC, so a consumer in another time zone reads the same instant, and a naive
datetime (whose zone nobody knows) is refused at the producer instead of misread by a consumer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

__all__ = ["Cents", "Currency", "Id", "ProgramCode", "Units", "UtcDatetime"]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


Id = Annotated[str, StringConstraints(min_length=1, max_length=128)]
"""An aggregate or entity id (member, company, order...): opaque text, never parsed."""

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An instant: must carry a zone, stored and sent as UTC."""

Cents = Annotated[int, Field(ge=0)]
"""An amount of money in the currency's minor unit (cents)."""

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""ISO 4217 code, e.g. USD."""

Units = Annotated[int, Field(ge=0)]
"""Recertification units (RUs): whole numbers."""

ProgramCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,6}$")]
"""A certification program's code (BPI, DVEP...). Text, not an enum, so that a new program is not a
contract change for consumers that only count or display programs."""
