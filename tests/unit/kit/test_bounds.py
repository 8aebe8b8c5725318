"""The input types of scte.kit.bounds refuse what pydantic's lax mode took (the fuzzing gate's
negative cases): booleans and text for integers, numbers for dates and instants, values past a column."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from scte.kit.bounds import INT_MAX, Count, IsoDate, IsoInstant, PositiveCount, StoredCents, StrictFlag


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        (Count, False),
        (Count, "3"),
        (Count, -1),
        (Count, INT_MAX + 1),
        (PositiveCount, 0),
        (PositiveCount, 2**63),
        (StoredCents, 0),
        (StoredCents, 2**70),
        (StrictFlag, 0),
        (StrictFlag, "yes"),
        (IsoDate, 0),
        (IsoDate, "0"),
        (IsoDate, "20260310"),
        (IsoInstant, 0.5),
        (IsoInstant, "1700000000"),
        (IsoInstant, "2026-03-10T12:00:00"),  # no zone
    ],
)
def test_refused(kind: Any, bad: Any) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(kind).validate_python(bad)


def test_accepted() -> None:
    assert TypeAdapter(Count).validate_python(0) == 0
    assert TypeAdapter(StoredCents).validate_python(INT_MAX) == INT_MAX
    assert TypeAdapter(StrictFlag).validate_python(True) is True
    assert TypeAdapter(IsoDate).validate_python("2026-03-10") == date(2026, 3, 10)
    instant = TypeAdapter(IsoInstant).validate_python("2026-03-10T12:00:00Z")
    assert instant == datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert TypeAdapter(IsoDate).json_schema() == {"format": "date", "type": "string"}
