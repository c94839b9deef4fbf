"""Writing cookies onto whatever response object the caller handed us."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ._cookies import CookieWrite, cookie_family

log = logging.getLogger("authsession")


# Where the middleware collects the cookies resolution wants written during
# one request (ASGI scope / WSGI environ key); it adds them to the response
# headers when the response starts.
PENDING_KEY = "authsession.pending_cookies"


class PendingCookies(dict[str, str]):
    """Set-Cookie header values by cookie name; a later write for a name wins.

    Last-write-wins matters: a sliding refresh found before the app runs and a
    sign-out inside the app both target the same cookie, and the sign-out must
    be what the browser sees. ``sent`` is set once the response has started:
    later writes cannot reach the client and are reported instead of lost.
    """

    # A slot that whoever makes the sink (the middleware, once per request)
    # sets at once, rather than an __init__ (dict's own constructor is
    # several times cheaper than a Python one), a class default (the first
    # assignment would give every sink an instance dict of its own) or a
    # __getattr__ answering False while it is unset (a class with one gets
    # no specialised attribute reads: every `sent` check of every message
    # went through the slow lookup). Readers off the hot path use
    # ``getattr(sink, "sent", False)``.
    __slots__ = ("sent",)
    sent: bool

    def add(self, writes: Iterable[CookieWrite]) -> None:
        for w in writes:
            self[w.name] = w.header_value()

    def discard_family(self, families: set[str]) -> None:
        """Forget pending writes for these cookies and their chunks (a newer
        decision about the cookie replaces them all)."""
        for name in [n for n in self if cookie_family(n) in families]:
            del self[name]

    def __repr__(self) -> str:  # values are tokens
        return f"PendingCookies(names={sorted(self)!r}, sent={getattr(self, 'sent', False)})"


def apply_writes(response: Any, writes: Iterable[CookieWrite]) -> None:
    """Set each cookie through ``response.set_cookie`` (Starlette, Werkzeug, Django).

    A list receives ``("set-cookie", header)`` pairs instead, for callers that
    build raw headers; a ``PendingCookies`` collects them for the middleware.
    """
    writes = tuple(writes)
    if not writes or response is None:
        return
    if isinstance(response, PendingCookies):
        if getattr(response, "sent", False):
            log.warning(
                "authsession: the response had already started; cookie(s) %s not written "
                "(sign in/out before streaming the body, or pass response=)",
                ", ".join(sorted({w.name for w in writes})),
            )
            return
        response.add(writes)
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
        # Only a relayed upstream cookie has a domain; other calls stay as they were.
        extra = {"domain": w.domain} if w.domain else {}
        set_cookie(
            w.name,
            w.value,
            max_age=w.max_age,
            # Max-Age=0 alone deletes: Django refuses expires together with
            # max_age, and Starlette, Werkzeug and Django derive the rest.
            expires=None if deleting else w.expires,
            path=w.path,
            secure=w.secure,
            httponly=w.httponly,
            samesite=w.samesite,
            **extra,
        )
