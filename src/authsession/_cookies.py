"""Auth.js session cookies: names, reading (chunks joined), writing (chunks split).

Sans-I/O: plain strings and mappings in, plain values out. The protocol shells
and the response adapters turn ``CookieWrite`` values into headers or
``set_cookie`` calls.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import NamedTuple
from urllib.parse import unquote

log = logging.getLogger("authsession")

SECURE_PREFIX = "__Secure-"
V5_NAME = "authjs.session-token"
V4_NAME = "next-auth.session-token"

# Auth.js: a cookie may be 4096 bytes, of which about 160 go to its name and
# attributes, so values are cut into 3936-character chunks.
ALLOWED_COOKIE_SIZE = 4096
ESTIMATED_EMPTY_COOKIE_SIZE = 160
CHUNK_SIZE = ALLOWED_COOKIE_SIZE - ESTIMATED_EMPTY_COOKIE_SIZE

# Bounds on what we are willing to join and decrypt. Real sessions are a few
# KB; a browser keeps ~180 cookies per site. Past these the request is treated
# as having no session (and a warning says why).
MAX_SESSION_CHARS = 64 * 1024
MAX_CHUNKS = 32

# Every session cookie name contains this, so a header without it is skipped
# without parsing: the common case for anonymous traffic.
_MARKER = "session-token"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class CookieName:
    """A session cookie name and what it implies: token format and ``Secure``."""

    name: str
    version: int  # 5: Auth.js (salt = name), 4: NextAuth (empty salt)
    # "<name>.0", precomputed: every request checks it for each candidate name.
    first_chunk: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "first_chunk", self.name + ".0")

    @property
    def secure(self) -> bool:
        return self.name.startswith(SECURE_PREFIX)


def version_for(name: str) -> int:
    """NextAuth v4 names carry ``next-auth``; every other name is Auth.js v5."""
    return 4 if "next-auth" in name else 5


class Candidates(tuple[CookieName, ...]):
    """The candidate names in precedence order, plus an index by name.

    The index serves the usual request, which carries exactly one session
    cookie: it is found by one dict lookup instead of a scan of the names.
    """

    by_name: dict[str, CookieName]

    def __new__(cls, names: Iterable[CookieName]) -> Candidates:
        self = super().__new__(cls, names)
        self.by_name = {spec.name: spec for spec in self}
        return self


def candidate_names(cookie_name: str | None, secure_cookie: bool | None) -> Candidates:
    """The names to look for, most specific first.

    An explicit ``cookie_name`` is the only one read. Otherwise ``secure_cookie``
    picks the ``__Secure-`` or plain names, and ``None`` reads both, v5 first.
    """
    if cookie_name:
        return Candidates((CookieName(cookie_name, version_for(cookie_name)),))
    names: list[CookieName] = []
    for base, version in ((V5_NAME, 5), (V4_NAME, 4)):
        if secure_cookie is not False:
            names.append(CookieName(SECURE_PREFIX + base, version))
        if secure_cookie is not True:
            names.append(CookieName(base, version))
    return Candidates(names)


def _clean_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]
    if "%" in value:
        # The `cookie` package Auth.js uses percent-decodes values and keeps
        # the raw value when the encoding is malformed; so do we.
        with contextlib.suppress(UnicodeDecodeError):
            value = unquote(value, errors="strict")
    return value


def parse_session_cookies(header: str) -> dict[str, str]:
    """The session-token cookies from a ``Cookie`` header; other cookies are ignored.

    The first occurrence of a name wins, as in the ``cookie`` package.
    """
    found: dict[str, str] = {}
    if _MARKER not in header:
        return found
    for part in header.split(";"):
        # Most cookies are not session cookies: skip them before splitting.
        if _MARKER not in part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            continue
        name = name.strip()
        if _MARKER in name and name not in found:
            value = value.strip()
            # A token is base64url and dots: no quotes, no escapes, so the
            # usual value needs no further cleaning (and no call to do it).
            if value and value[0] != '"' and "%" not in value:
                found[name] = value
            else:
                found[name] = _clean_value(value)
    return found


def lone_session_cookie(
    header: str, by_name: Mapping[str, CookieName]
) -> tuple[CookieName, str] | None:
    """The session cookie of a ``Cookie`` header that holds exactly one, whole
    and plain: ``(name, value)``; None for anything else.

    Several session cookies, chunks, quoting and escapes give None, and
    ``parse_session_cookies`` then applies the full rules. The usual signed-in
    request carries one session cookie among a few others; this finds it with
    a handful of string searches, without splitting the header or building a
    mapping, for the middleware's per-request path (measured: about half the
    cost of parsing).
    """
    start = header.find(_MARKER)
    if start == -1:
        return None
    end = header.find(";", start)
    if end == -1:
        end = len(header)
    elif header.find(_MARKER, end) != -1:
        return None  # a second session cookie (or chunk): precedence rules apply
    # The cookie holding the marker, split as the full parse splits it: the
    # name is what precedes its first "=". The full parse reads only names
    # holding the marker, so a marker inside the value answers nothing here.
    name, _, value = header[header.rfind(";", 0, start) + 1 : end].partition("=")
    if _MARKER not in name:
        return None
    spec = by_name.get(name.strip())
    if spec is None:
        return None
    value = value.strip()
    if not value or value[0] == '"' or "%" in value or len(value) > MAX_SESSION_CHARS:
        return None
    return spec, value


def session_cookies_from_mapping(cookies: Mapping[str, str]) -> dict[str, str]:
    """The session-token entries of an already-parsed cookie mapping."""
    return {
        name: value
        for name, value in cookies.items()
        if type(name) is str and _MARKER in name and type(value) is str
    }


class FoundCookie(NamedTuple):
    """A session value as read, and every cookie name it came from (for clean-up).

    ``spec`` is None for a token that came from an ``Authorization`` header.
    A named tuple rather than a frozen dataclass: one is built per request,
    and a tuple is built several times faster.
    """

    spec: CookieName | None
    value: str
    names: tuple[str, ...]

    def __repr__(self) -> str:
        # The value is the session token: a repr (logs, tracebacks with
        # locals) shows its length only.
        return (
            f"FoundCookie(spec={self.spec!r}, value=<{len(self.value)} chars>, "
            f"names={self.names!r})"
        )


_new_found = tuple.__new__


def find_session_cookie(
    cookies: Mapping[str, str], candidates: Iterable[CookieName]
) -> FoundCookie | None:
    """The first candidate present, whole or chunked; chunks joined by index."""
    if len(cookies) == 1 and type(candidates) is Candidates:
        for name, only in cookies.items():
            known = candidates.by_name.get(name)
            if known is not None and only and len(only) <= MAX_SESSION_CHARS:
                # tuple.__new__ skips the named tuple's Python-level __new__.
                return _new_found(FoundCookie, (known, only, (name,)))
    for spec in candidates:
        whole = cookies.get(spec.name)
        if whole:
            if len(whole) > MAX_SESSION_CHARS:
                log.warning(
                    "authsession: %s cookie is %d characters, over the %d limit; ignored",
                    spec.name,
                    len(whole),
                    MAX_SESSION_CHARS,
                )
                return None
            return FoundCookie(spec, whole, _related_names(cookies, spec.name))
        if spec.first_chunk in cookies:
            joined = _join_chunks(cookies, spec.name)
            if not joined:
                return None
            return FoundCookie(spec, joined, _related_names(cookies, spec.name))
    return None


def _join_chunks(cookies: Mapping[str, str], name: str) -> str | None:
    """``name.0``, ``name.1``, … joined in index order; None when there is no ``name.0``.

    Returns "" (refuse) when the chunks exceed the count or size bounds.
    """
    prefix = name + "."
    if prefix + "0" not in cookies:
        return None
    parts: list[str] = []
    total = 0
    for index in range(MAX_CHUNKS + 1):
        value = cookies.get(f"{prefix}{index}")
        if not value:
            break
        if index == MAX_CHUNKS:
            log.warning(
                "authsession: %s is split into more than %d chunks; ignored", name, MAX_CHUNKS
            )
            return ""
        total += len(value)
        if total > MAX_SESSION_CHARS:
            log.warning(
                "authsession: %s chunks exceed %d characters; ignored", name, MAX_SESSION_CHARS
            )
            return ""
        parts.append(value)
    return "".join(parts)


def _related_names(cookies: Mapping[str, str], name: str) -> tuple[str, ...]:
    if len(cookies) == 1:  # the usual case: the one session cookie, whole
        return (name,) if name in cookies else ()
    prefix = name + "."
    return tuple(
        key
        for key in cookies
        if key == name or (key.startswith(prefix) and key[len(prefix) :].isdigit())
    )


@dataclass(frozen=True, slots=True)
class CookieWrite:
    """One ``Set-Cookie`` to send. ``expires=None`` with ``max_age=0`` deletes."""

    name: str
    value: str
    expires: datetime | None
    secure: bool
    max_age: int | None = None
    path: str = "/"
    httponly: bool = True
    samesite: str = "lax"
    # Set only when relaying a cookie an upstream Auth.js wrote with a Domain
    # (proxy mode); authsession's own cookies are host-only, like Auth.js's default.
    domain: str | None = None

    def __repr__(self) -> str:
        # The value is a session token (or a chunk of one): show its length only.
        return (
            f"CookieWrite(name={self.name!r}, value=<{len(self.value)} chars>, "
            f"expires={self.expires!r}, secure={self.secure!r}, max_age={self.max_age!r}, "
            f"path={self.path!r}, httponly={self.httponly!r}, samesite={self.samesite!r}, "
            f"domain={self.domain!r})"
        )

    def header_value(self) -> str:
        parts = [f"{self.name}={self.value}", f"Path={self.path}"]
        if self.domain:
            parts.append(f"Domain={self.domain}")
        if self.max_age is not None:
            parts.append(f"Max-Age={self.max_age}")
        expires = (
            self.expires if self.expires is not None else (_EPOCH if self.max_age == 0 else None)
        )
        if expires is not None:
            parts.append(
                "Expires=" + format_datetime(expires.astimezone(timezone.utc), usegmt=True)
            )
        if self.httponly:
            parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        parts.append("SameSite=" + self.samesite.capitalize())
        return "; ".join(parts)


def chunk_cookies(
    name: str, value: str, expires: datetime, existing: Iterable[str] = ()
) -> list[CookieWrite]:
    """Cookies that store ``value`` under ``name`` the way Auth.js does.

    One cookie when it fits, else ``name.0``, ``name.1``, …; every other name
    in ``existing`` (stale chunks, or the unchunked name) is cleared.
    """
    secure = name.startswith(SECURE_PREFIX)
    if len(value) <= CHUNK_SIZE:
        writes = [CookieWrite(name, value, expires, secure)]
    else:
        writes = [
            CookieWrite(f"{name}.{i}", value[start : start + CHUNK_SIZE], expires, secure)
            for i, start in enumerate(range(0, len(value), CHUNK_SIZE))
        ]
    written = {w.name for w in writes}
    writes.extend(clear_cookies(n for n in existing if n not in written))
    return writes


def clear_cookies(names: Iterable[str]) -> list[CookieWrite]:
    return [
        CookieWrite(n, "", None, n.startswith(SECURE_PREFIX), max_age=0)
        for n in dict.fromkeys(names)
    ]


def cookie_family(name: str) -> str:
    """The cookie a name belongs to: ``x`` for ``x`` and for its chunks ``x.0``, ``x.1``…"""
    head, dot, index = name.rpartition(".")
    return head if dot and head and index.isdigit() else name


def session_cookie_names(cookies: Iterable[str], candidates: Iterable[CookieName]) -> list[str]:
    """Every cookie (whole or chunk) of any candidate session cookie name."""
    wanted = {spec.name for spec in candidates}
    return [name for name in cookies if cookie_family(name) in wanted]


def all_session_cookies(
    cookies: Mapping[str, str], candidates: Iterable[CookieName]
) -> list[FoundCookie]:
    """Each candidate's session value the request carries (a request can carry
    several: ``__Secure-`` and plain, v5 and v4); ``find_session_cookie`` picks one."""
    found = []
    for spec in candidates:
        one = find_session_cookie(cookies, (spec,))
        if one is not None:
            found.append(one)
    return found


def stale_cookies(
    cookies: Iterable[str], candidates: Iterable[CookieName], writes: Iterable[CookieWrite]
) -> list[CookieWrite]:
    """Clearing writes for the request's session cookies that ``writes`` do not replace.

    A sign-in that replaces a chunked cookie with a shorter one must clear the
    chunks it no longer uses (a whole cookie replaced by chunks, or the
    reverse), and a session under another candidate name (``__Secure-`` versus
    plain, a v4 cookie) must go too: readers prefer one name, and a leftover
    could be the one they pick.
    """
    written = {w.name for w in writes}
    stale = [name for name in session_cookie_names(cookies, candidates) if name not in written]
    return clear_cookies(stale) if stale else []
