"""Timestamps the way JavaScript's ``Date.prototype.toISOString`` writes them."""

from __future__ import annotations

import time
from datetime import datetime, timezone

# The formatted whole second of the last call: every session resolved within
# one second shares it, and formatting is most of iso_ms's cost. One tuple,
# replaced whole, so threads never see a second paired with another's text.
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def iso_ms(timestamp: float) -> str:
    """``2026-11-22T18:34:42.123Z``: UTC, milliseconds, truncated like a JS Date."""
    global _last_second
    millis = int(timestamp * 1000)
    seconds, fraction = divmod(millis, 1000)
    last = _last_second
    if last[0] != seconds:
        last = _last_second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{last[1]}.{fraction:03d}Z"


def to_datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(int(timestamp * 1000) / 1000, tz=timezone.utc)


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 string (``Z`` or offset) into an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
