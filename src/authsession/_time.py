"""Timestamps the way JavaScript's ``Date.prototype.toISOString`` writes them."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

# The formatted whole second of the last call: every session resolved within
# one second shares it, and formatting is most of iso_ms's cost. One tuple,
# replaced whole, so threads never see a second paired with another's text.
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")
# The last whole result: a busy server resolves many sessions per millisecond.
# None until the first call (any int is a real millisecond, -1 included).
_last_milli: tuple[int | None, str] = (None, "")


def iso_ms(timestamp: float) -> str:
    """``2026-11-22T18:34:42.123Z``: UTC, milliseconds, truncated like a JS Date."""
    global _last_second, _last_milli
    millis = int(timestamp * 1000)
    done = _last_milli
    if done[0] == millis:
        return done[1]
    seconds, fraction = divmod(millis, 1000)
    last = _last_second
    if last[0] != seconds:
        last = _last_second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    text = f"{last[1]}.{fraction:03d}Z"
    _last_milli = (millis, text)
    return text


def to_datetime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(int(timestamp * 1000) / 1000, tz=timezone.utc)


# The ISO 8601 forms stores write (JavaScript, PostgreSQL's text output, Python):
# extended or basic date, optional time with any number of fraction digits,
# and an offset written Z, +HH, +HHMM or +HH:MM.
_ISO = re.compile(
    r"(?P<y>\d{4})-?(?P<mo>\d{2})-?(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2})(?::?(?P<mi>\d{2})(?::?(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?)?)?"
    r"(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?)?",
    re.ASCII,
)
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})?(?::?(\d{2})(?:[.,](\d+))?)?", re.ASCII)


def normalize_iso(value: str) -> str:
    """*value* in the one form every supported Python's ``fromisoformat`` reads.

    Python 3.10 accepts only ``HH:MM:SS`` with 0, 3 or 6 fraction digits and
    ``+HH:MM`` offsets; 3.11 accepts much more (``.1``, ``.12345``, ``+0000``,
    ``+00``, ``Z``, basic format). Normalising first makes both parse the same
    strings the same way: the fraction is cut or padded to 6 digits (like
    3.11, which truncates) and the offset becomes ``+HH:MM[:SS[.ffffff]]``.
    Text that is not one of these forms is returned unchanged.
    """
    text = value.strip()
    match = _ISO.fullmatch(text)
    if match is None:
        return text
    out = f"{match['y']}-{match['mo']}-{match['d']}"
    if match["h"] is not None:
        fraction = (match["f"] or "")[:6].ljust(6, "0")
        out += f"T{match['h']}:{match['mi'] or '00'}:{match['s'] or '00'}.{fraction}"
    tz = match["tz"]
    if tz is not None:
        out += _offset(tz)
    return out


def _offset(tz: str) -> str:
    if tz in ("Z", "z"):
        return "+00:00"
    parts = _OFFSET.fullmatch(tz)
    if parts is None:  # pragma: no cover - _ISO only lets valid offsets through
        return tz
    sign, hours, minutes, seconds, fraction = parts.groups()
    out = f"{sign}{hours}:{minutes or '00'}"
    if seconds is not None:
        out += f":{seconds}"
        if fraction:
            out += "." + fraction[:6].ljust(6, "0")
    return out


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 string (``Z`` or offset) into a datetime, alike on 3.10+.

    Aware when the text has an offset; see :func:`normalize_iso` for the forms.
    Raises ``ValueError`` for text that is not a date-time.
    """
    return datetime.fromisoformat(normalize_iso(value))
