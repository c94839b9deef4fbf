"""Timestamps the way JavaScript's ``Date.prototype.toISOString`` writes them."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def iso_ms(timestamp: float) -> str:
    """``2026-11-22T18:34:42.123Z``: UTC, milliseconds, truncated like a JS Date."""
    millis = int(timestamp * 1000)
    seconds, fraction = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:03d}Z"


def to_datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(int(timestamp * 1000) / 1000, tz=timezone.utc)


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 string (``Z`` or offset) into an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
