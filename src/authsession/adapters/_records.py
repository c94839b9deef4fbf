"""The value conventions every adapter shares: datetimes, ids, record shapes.

Kept apart from any store so the four adapters agree on what comes out:
millisecond UTC datetimes (what a JavaScript ``Date`` holds), string ids, and
sessions that carry both the Python and the Auth.js key names.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .._time import parse_iso
from ._interface import Record

#: The user fields of the Auth.js schema (``users`` table columns).
USER_FIELDS = ("id", "name", "email", "emailVerified", "image")

#: The account fields of the Auth.js schema (``accounts`` table columns, minus ``id``).
ACCOUNT_FIELDS = (
    "userId",
    "type",
    "provider",
    "providerAccountId",
    "refresh_token",
    "access_token",
    "expires_at",
    "id_token",
    "scope",
    "session_state",
    "token_type",
)

# snake_case spellings callers may use for the camelCase Auth.js names.
_ALIASES = {
    "email_verified": "emailVerified",
    "user_id": "userId",
    "provider_account_id": "providerAccountId",
    "session_token": "sessionToken",
}


def utc(value: datetime | str) -> datetime:
    """An aware UTC datetime truncated to milliseconds.

    Accepts an aware datetime (any zone), a naive one (taken as UTC) or an
    ISO 8601 string (``Z`` or an offset, parsed alike on every Python version:
    see :func:`authsession._time.normalize_iso`). Raises ``TypeError``/``ValueError``
    on anything else, naming the value's type.
    """
    if isinstance(value, str):
        value = parse_iso(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime or an ISO 8601 string, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utc_or_none(value: datetime | str | None) -> datetime | None:
    return None if value is None else utc(value)


def iso(value: datetime) -> str:
    """``2026-11-22T18:34:42.123Z``: fixed width, so text order is time order."""
    value = utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def epoch_ms(value: datetime) -> int:
    return int(utc(value).timestamp() * 1000 + 0.5)


def from_epoch_ms(value: float) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)


def canonical(data: Mapping[str, Any]) -> dict[str, Any]:
    """*data* with snake_case aliases renamed to the Auth.js camelCase names."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[_ALIASES.get(key, key)] = value
    return out


def new_id() -> str:
    return str(uuid.uuid4())


def user_record(data: Mapping[str, Any]) -> Record:
    """A user in the shared shape: the five Auth.js fields always present, string id,
    ``emailVerified`` as an aware datetime or None, any extra fields kept."""
    user = canonical(data)
    for name in USER_FIELDS:
        user.setdefault(name, None)
    if user["id"] is not None:
        user["id"] = str(user["id"])
    user["emailVerified"] = utc_or_none(user["emailVerified"])
    return user


def user_from_row(row: Any) -> Record | None:
    """A users-table row (a mapping, or an sqlite3.Row) as a user record; None stays None."""
    if row is None:
        return None
    data = dict(row)
    data["emailVerified"] = stored_time(data.get("emailVerified"))
    return user_record(data)


def session_record(session_token: str, user_id: Any, expires: datetime | str) -> Record:
    """A session carrying both key spellings the project uses."""
    uid = str(user_id)
    when = utc(expires)
    return {
        "session_token": session_token,
        "sessionToken": session_token,
        "user_id": uid,
        "userId": uid,
        "expires": when,
    }


def account_record(data: Mapping[str, Any]) -> Record:
    account = canonical(data)
    for name in ACCOUNT_FIELDS:
        account.setdefault(name, None)
    if account["userId"] is not None:
        account["userId"] = str(account["userId"])
    return account


def verification_record(identifier: str, token: str, expires: datetime | str) -> Record:
    return {"identifier": identifier, "token": token, "expires": utc(expires)}


def extra_user_id(extra: Mapping[str, Any]) -> str | None:
    """The new owner an ``update_session(**extra)`` asks for, if any."""
    value = extra.get("user_id", extra.get("userId"))
    return None if value is None else str(value)


def stored_time(value: Any) -> datetime | None:
    """A datetime column as some Auth.js stack wrote it, as an aware UTC datetime.

    Accepts a datetime, ISO 8601 text, or epoch numbers (milliseconds when the
    magnitude says so -- Prisma and Drizzle's ``timestamp_ms`` -- else seconds).
    """
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return from_epoch_ms(value if abs(value) >= 1e11 else value * 1000)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return stored_time(int(value.strip()))
    return utc(value)
