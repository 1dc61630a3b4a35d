"""How numbers and times read for people and in records: one home for both."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


def fmt(value: Any, digits: int = 4) -> str:
    """A value for people: "—" for none, yes/no, integers with thousands separators, floats to
    `digits` significant digits (scientific when very large or small)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e15 or magnitude < 1e-3:
        return f"{value:.{max(digits - 1, 1)}e}"
    if magnitude >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp() -> str:
    """Now, as recorded in checkpoints, lineage and metadata: ISO 8601 in UTC, to the second."""
    return utc_now().isoformat(timespec="seconds")
