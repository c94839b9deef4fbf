"""Proxy mode without I/O: what to send upstream, how to read the answer, when to back off.

Everything here is plain data in, plain data out, tested without a socket:

* ``build_request``: the upstream ``GET {base}/session`` carrying only the
  request's own session cookie (whole or chunked, under its own name) and the
  static headers; never the user's other cookies.
* ``interpret``: an upstream reply (status, ``Set-Cookie`` headers, body) into
  a session, "no session", or a failure; which ``Set-Cookie`` headers may be
  relayed to the client.
* ``UpstreamHealth``: the circuit breaker and the once-per-outage warning.
* ``backoff_delay``: exponential backoff with jitter between retries.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote, unquote, urlencode

from ._cookies import CHUNK_SIZE, CookieName, CookieWrite, FoundCookie
from ._session import Session
from ._time import parse_iso
from .jwt import _jwe
from .jwt._errors import JWTDecodeError

log = logging.getLogger("authsession")

#: The most of an upstream body we read; a session is a few hundred bytes.
MAX_BODY = 1024 * 1024

# Characters a cookie value may carry unencoded (RFC 6265 cookie-octet, less
# '%', which the receiving `cookie` package would percent-decode).
_COOKIE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    url: str
    headers: tuple[tuple[str, str], ...]
    method: str = "GET"
    body: bytes | None = None


def _chunked(name: str, value: str) -> list[tuple[str, str]]:
    """Auth.js's own layout: one cookie when it fits, else ``name.0``, ``name.1``, …"""
    if len(value) <= CHUNK_SIZE:
        return [(name, value)]
    return [
        (f"{name}.{i}", value[start : start + CHUNK_SIZE])
        for i, start in enumerate(range(0, len(value), CHUNK_SIZE))
    ]


def forwarded_cookies(
    found: FoundCookie, candidates: Iterable[CookieName]
) -> list[tuple[str, str]]:
    """The cookies to send upstream for ``found``: its own name, nothing else.

    A cookie read from chunks is sent as ``name.0``, ``name.1``, … cut at
    Auth.js's chunk size (the layout Auth.js writes), and Auth.js joins them
    in index order, so the upstream reads exactly the value the cache is keyed
    by. A Bearer token names no cookie: it goes under the candidate names of
    the Auth.js version that wrote it (see ``bearer_names``).
    """
    if found.spec is not None:
        name = found.spec.name
        if name in found.names or not found.names:
            return [(name, found.value)]
        # It came in chunks: send chunks, as Auth.js would have written them.
        pieces = range(0, max(len(found.value), 1), CHUNK_SIZE)
        return [(f"{name}.{i}", found.value[at : at + CHUNK_SIZE]) for i, at in enumerate(pieces)]
    cookies: list[tuple[str, str]] = []
    for spec in bearer_names(found.value, candidates):
        cookies.extend(_chunked(spec.name, found.value))
    return cookies


def bearer_names(token: str, candidates: Iterable[CookieName]) -> list[CookieName]:
    """The candidate names a Bearer token is forwarded under.

    The upstream reads one name (secure or plain, v5 or v4, by its own
    configuration), so every name costs the token's full size in the Cookie
    header. The token's JWE header says which version wrote it: Auth.js v5
    always sets ``kid`` (and uses A256CBC-HS512); NextAuth v4 never sets
    ``kid`` and uses A256GCM. Only that version's names are sent, since the
    other version could not decrypt it anyway (its key is derived with a
    different salt). A token that is not a JWE (a database session token, a
    custom ``jwt.encode``) could be either, and goes under every name; so
    does one whose version matches no candidate (the upstream decides).
    """
    names = list(candidates)
    version = _jwe_version(token)
    matching = [spec for spec in names if spec.version == version]
    return matching or names


def _jwe_version(token: str) -> int | None:
    """5 or 4 for a token shaped like an Auth.js / NextAuth JWE, else None."""
    if token.count(".") != 4:
        return None
    try:
        header = _jwe.parse_header(token.partition(".")[0])
    except (JWTDecodeError, ValueError):
        return None
    if header.get("kid") is not None or header.get("enc") != _jwe.GCM:
        return 5
    return 4


def cookie_header(cookies: Iterable[tuple[str, str]]) -> str:
    return "; ".join(f"{name}={quote(value, safe=_COOKIE_SAFE)}" for name, value in cookies)


def build_request(
    url: str,
    static_headers: tuple[tuple[str, str], ...],
    found: FoundCookie,
    candidates: Iterable[CookieName],
    *,
    extra_cookie: str = "",
    form: dict[str, str] | None = None,
) -> UpstreamRequest:
    """``GET url`` (or a form ``POST``) carrying the session cookie and the static headers.

    ``extra_cookie`` is appended to the Cookie header exactly as given (a
    ``name=value`` the upstream itself set, already encoded).
    """
    headers = list(static_headers)
    if not any(name.lower() == "accept" for name, _ in headers):
        headers.append(("accept", "application/json"))
    cookie = cookie_header(forwarded_cookies(found, candidates))
    headers.append(("cookie", f"{cookie}; {extra_cookie}" if extra_cookie else cookie))
    if form is None:
        return UpstreamRequest(url, tuple(headers))
    headers.append(("content-type", "application/x-www-form-urlencoded"))
    return UpstreamRequest(url, tuple(headers), "POST", urlencode(form).encode("ascii"))


# --------------------------------------------------------------------------- #
# Reading the answer
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: a response, or ``error`` (a transport failure, described)."""

    status: int = 0
    set_cookies: tuple[str, ...] = ()
    body: bytes = b""
    error: str | None = None
    truncated: bool = False
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """``session``: a session; ``none``: the upstream says no session; ``failure``: no answer."""

    kind: Literal["session", "none", "failure"]
    session: Session | None = None
    expires_at: float | None = None  # the session's expiry, epoch seconds
    writes: tuple[CookieWrite, ...] = ()
    reason: str = ""


def session_cookie_matcher(candidates: Iterable[CookieName]) -> Callable[[str], bool]:
    """True for a session cookie name or one of its chunks (``name.N``)."""
    names = frozenset(spec.name for spec in candidates)

    def matches(name: str) -> bool:
        if name in names:
            return True
        base, dot, index = name.rpartition(".")
        return bool(dot) and index.isdigit() and base in names

    return matches


def parse_set_cookie(header: str) -> CookieWrite | None:
    """One ``Set-Cookie`` header as a ``CookieWrite`` (the value kept as sent)."""
    pair, *attributes = header.split(";")
    name, sep, value = pair.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        return None
    path = "/"
    domain: str | None = None
    expires: datetime | None = None
    max_age: int | None = None
    secure = httponly = False
    samesite = "lax"
    for attribute in attributes:
        key, _, val = attribute.strip().partition("=")
        key, val = key.strip().lower(), val.strip()
        if key == "path" and val.startswith("/"):
            path = val
        elif key == "domain" and val:
            domain = val
        elif key == "expires":
            try:
                expires = parsedate_to_datetime(val)
            except (TypeError, ValueError, IndexError):
                expires = None
        elif key == "max-age":
            try:
                max_age = int(val)
            except ValueError:
                max_age = None
        elif key == "secure":
            secure = True
        elif key == "httponly":
            httponly = True
        elif key == "samesite" and val.lower() in ("lax", "strict", "none"):
            samesite = val.lower()
    if max_age is not None and max_age <= 0:
        # A deletion, whatever else it says: our writer turns this into
        # Max-Age=0 with an Expires in 1970.
        return CookieWrite(
            name, "", None, secure, max_age=0, path=path, httponly=httponly,
            samesite=samesite, domain=domain,
        )  # fmt: skip
    return CookieWrite(
        name, value, expires, secure, max_age=max_age, path=path, httponly=httponly,
        samesite=samesite, domain=domain,
    )  # fmt: skip


def relayed_writes(
    set_cookies: Iterable[str], matches: Callable[[str], bool]
) -> tuple[CookieWrite, ...]:
    """The upstream's ``Set-Cookie`` headers for session cookies; every other one dropped.

    Auth.js also sets its CSRF and callback-URL cookies on a session call that
    did not send them; those belong to the Auth.js app's own pages, not here.
    """
    writes: list[CookieWrite] = []
    for header in set_cookies:
        write = parse_set_cookie(header)
        if write is not None and matches(write.name):
            writes.append(write)
    return tuple(writes)


def reissued_token(writes: Iterable[CookieWrite], candidates: Iterable[CookieName]) -> str | None:
    """The session token the relayed cookies give the client (chunks joined), if any.

    The cache is seeded with it, so the client's next request, carrying the
    re-issued cookie, is a hit rather than another upstream call.
    """
    live = {w.name: unquote(w.value) for w in writes if w.max_age != 0 and w.value}
    for spec in candidates:
        if spec.name in live:
            return live[spec.name]
        parts: list[str] = []
        index = 0
        while f"{spec.name}.{index}" in live:
            parts.append(live[f"{spec.name}.{index}"])
            index += 1
        if parts:
            return "".join(parts)
    return None


def _session_expiry(data: dict[str, Any]) -> float | None:
    expires = data.get("expires")
    if not isinstance(expires, str):
        return None
    try:
        when = parse_iso(expires)
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp()


def is_refusal(reply: Reply) -> bool:
    """A 4xx: the upstream (or a proxy in front of it) refused this request.

    An oversized or malformed cookie is the client's doing, not the
    upstream's health: it reads as "no session" for that cookie and gives the
    circuit breaker no verdict, so one client cannot open it for everyone.
    """
    return reply.error is None and 400 <= reply.status < 500


def interpret(
    reply: Reply,
    matches: Callable[[str], bool] | None,
    now: float | None = None,
) -> Outcome:
    """The outcome of one upstream reply. ``matches`` None: relay no cookies."""
    if reply.error is not None:
        return Outcome("failure", reason=reply.error)
    if is_refusal(reply):
        return Outcome("none", reason=f"the upstream refused the request (HTTP {reply.status})")
    if not 200 <= reply.status < 300:
        return Outcome("failure", reason=f"HTTP {reply.status}")
    if reply.truncated:
        return Outcome("failure", reason=f"the response is larger than {MAX_BODY} bytes")
    try:
        data = json.loads(reply.body) if reply.body.strip() else None
    except (ValueError, UnicodeDecodeError):
        return Outcome("failure", reason="the response is not JSON")
    writes = relayed_writes(reply.set_cookies, matches) if matches is not None else ()
    if data is None or data == {}:
        # Auth.js v5 answers `null` without a session, NextAuth v4 `{}`.
        return Outcome("none", writes=writes)
    if not isinstance(data, dict):
        return Outcome(
            "failure", reason=f"the response is JSON {type(data).__name__}, not a session"
        )
    expires_at = _session_expiry(data)
    if expires_at is None:
        return Outcome(
            "failure", reason="the response is not a session (no ISO 8601 'expires' string)"
        )
    if expires_at <= (time.time() if now is None else now):
        return Outcome("none", writes=writes, reason="the upstream session has expired")
    return Outcome("session", Session(data), expires_at, writes)


# --------------------------------------------------------------------------- #
# Signing out at the upstream (opt-in): Auth.js's own CSRF-protected POST
# --------------------------------------------------------------------------- #


def csrf_from(reply: Reply) -> tuple[str, str] | str:
    """From ``GET {base}/csrf``: (the form token, the ``name=value`` of its cookie), or why not.

    Auth.js checks the posted token against its CSRF cookie (a double-submit
    cookie, ``authjs.csrf-token`` / ``__Host-authjs.csrf-token`` /
    ``next-auth.csrf-token``), so both are sent back.
    """
    if reply.error is not None:
        return reply.error
    if reply.status != 200:
        return f"HTTP {reply.status} from the csrf endpoint"
    try:
        data = json.loads(reply.body)
    except (ValueError, UnicodeDecodeError):
        return "the csrf endpoint did not answer JSON"
    token = data.get("csrfToken") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        return "the csrf endpoint gave no csrfToken"
    for header in reply.set_cookies:
        pair = header.split(";", 1)[0].strip()
        name = pair.partition("=")[0].strip()
        if name.endswith("csrf-token"):
            return token, pair
    return "the csrf endpoint set no csrf cookie"


def sign_out_problem(reply: Reply) -> str | None:
    """None if Auth.js accepted the sign-out (it redirects, to an error page if not)."""
    if reply.error is not None:
        return reply.error
    if reply.status not in (200, 302, 303):
        return f"HTTP {reply.status}"
    if reply.location and "error=" in reply.location:
        return "the upstream redirected to its error page"
    return None


# --------------------------------------------------------------------------- #
# Retries and the circuit breaker
# --------------------------------------------------------------------------- #


def backoff_delay(
    attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random
) -> float:
    """Delay before retry number ``attempt + 1``: ``base * 2**attempt``, capped,
    half of it fixed and half random ("equal jitter"), so a crowd of workers
    that failed together does not retry together."""
    ceiling = min(cap, base * 2.0**attempt)
    return ceiling / 2 + rng() * ceiling / 2


class UpstreamHealth:
    """A circuit breaker over upstream resolutions, and the outage log lines.

    Closed: every resolution goes upstream. After ``threshold`` consecutive
    failures it opens: resolutions fail fast, no network call, for
    ``cooldown`` seconds. Then it is half-open: one trial resolution goes
    upstream (others still fail fast); success closes it, failure reopens it.
    A trial that never reports (its task was cancelled) is written off after
    ``trial_timeout`` seconds so the breaker cannot stay half-open forever.

    An outage logs one warning, at its first failure, and one info line when
    it ends; never a token.
    """

    def __init__(
        self,
        target: str,
        threshold: int,
        cooldown: float,
        trial_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.threshold = threshold
        self.cooldown = cooldown
        self.trial_timeout = trial_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self.state: Literal["closed", "open", "half-open"] = "closed"
        self.consecutive_failures = 0
        self.outage_failures = 0
        self.rejected = 0
        self._opened_at = 0.0
        self._trial_started: float | None = None

    def admit(self) -> bool:
        """May a resolution go upstream now? False: fail fast."""
        with self._lock:
            if self.state == "closed":
                return True
            now = self.clock()
            if self.state == "open":
                if now - self._opened_at < self.cooldown:
                    self.rejected += 1
                    return False
                self.state = "half-open"
                self._trial_started = now
                log.info("authsession: proxy upstream %s: circuit half-open, trying", self.target)
                return True
            # half-open: one trial at a time
            if self._trial_started is not None and now - self._trial_started < self.trial_timeout:
                self.rejected += 1
                return False
            self._trial_started = now
            return True

    def record(self, ok: bool, reason: str = "") -> None:
        with self._lock:
            if ok:
                if self.outage_failures:
                    log.info(
                        "authsession: proxy upstream %s recovered after %d failed resolution(s)",
                        self.target,
                        self.outage_failures,
                    )
                self.state = "closed"
                self.consecutive_failures = self.outage_failures = 0
                self._trial_started = None
                return
            self.consecutive_failures += 1
            self.outage_failures += 1
            if self.outage_failures == 1:
                log.warning(
                    "authsession: proxy upstream %s failed (%s); requests read as signed out "
                    "until it answers again",
                    self.target,
                    reason,
                )
            else:
                log.debug("authsession: proxy upstream %s failed again (%s)", self.target, reason)
            if self.state == "half-open" or self.consecutive_failures >= self.threshold:
                if self.state != "open":
                    log.info(
                        "authsession: proxy upstream %s: circuit open for %gs after %d "
                        "consecutive failure(s)",
                        self.target,
                        self.cooldown,
                        self.consecutive_failures,
                    )
                self.state = "open"
                self._opened_at = self.clock()
                self._trial_started = None

    def abandon(self) -> None:
        """An admitted resolution ended without an answer (cancelled): no verdict,
        but a half-open trial slot is freed for the next request."""
        with self._lock:
            if self.state == "half-open":
                self._trial_started = None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "state": self.state,
                "consecutive_failures": self.consecutive_failures,
                "rejected": self.rejected,
            }
