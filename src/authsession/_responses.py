"""Writing cookies onto whatever response object the caller handed us."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from ._cookies import CookieWrite

log = logging.getLogger("authsession")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def apply_writes(response: Any, writes: Iterable[CookieWrite]) -> None:
    """Set each cookie through ``response.set_cookie`` (Starlette, Werkzeug, Django).

    A list receives ``("set-cookie", header)`` pairs instead, for callers that
    build raw headers.
    """
    writes = tuple(writes)
    if not writes or response is None:
        return
    if isinstance(response, list):
        response.extend(("set-cookie", w.header_value()) for w in writes)
        return
    set_cookie = getattr(response, "set_cookie", None)
    if set_cookie is None:
        log.warning(
            "authsession: %s has no set_cookie(); %d session cookie(s) not written",
            type(response).__name__,
            len(writes),
        )
        return
    for w in writes:
        deleting = w.max_age == 0
        set_cookie(
            w.name,
            w.value,
            max_age=w.max_age,
            expires=_EPOCH if deleting else w.expires,
            path=w.path,
            secure=w.secure,
            httponly=w.httponly,
            samesite=w.samesite,
        )
