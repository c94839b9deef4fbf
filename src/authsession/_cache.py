"""The resolved-session cache: LRU-bounded, each entry with its own deadline.

One cache wraps every strategy. Keys are SHA-256 digests of the whole token:
the raw token is never kept or logged, and a session cached for one token can
only be found again by presenting that exact token. Reads take a lock because
cachetools' LRU reorders on every hit; the lock is held for a dict lookup,
never for a resolution.

Single flight: the first miss for a key resolves; concurrent misses for the
same key, from threads or asyncio tasks, wait for that result instead. A
failed resolution reaches every waiter as "no session" and is not cached; a
cancelled one hands the work to a waiter.

The cache also keeps the signed-out token keys (a bounded denylist, each key
until the token would have expired anyway), so a signed-out cookie presented
again is refused even where it still decrypts (the jwt strategy).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, fields
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

import cachetools

from ._cookies import CookieWrite
from ._errors import ConfigurationError
from ._session import Session
from ._time import parse_iso

log = logging.getLogger("authsession")

BUS_SCHEMES = ("redis", "rediss", "unix")


# Query-string options of a Redis URL that are never credentials: their
# values are shown. Every other value (``password=``, ``username=``, and
# whatever a future client accepts) is hidden.
_SHOWN_QUERY_KEYS = frozenset(
    {
        "db",
        "protocol",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "retry_on_timeout",
        "max_connections",
        "health_check_interval",
        "ssl_cert_reqs",
        "ssl_check_hostname",
        "decode_responses",
        "timeout",
    }
)


def redact_url(url: str) -> str:
    """``url`` with any password replaced, for logs and reprs.

    Credentials can sit in the user info (``redis://user:pw@host``) or in the
    query string (``redis://host/0?password=pw``); both are hidden.
    """
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            netloc = parts.netloc.rsplit("@", 1)[1]
            user = parts.username or ""
            parts = parts._replace(netloc=f"{user}:***@{netloc}")
        if parts.query:
            parts = parts._replace(query=_redact_query(parts.query))
        if parts.fragment:
            parts = parts._replace(fragment="***")
        return urlunsplit(parts)
    except ValueError:
        return "<unparsable url>"


def _redact_query(query: str) -> str:
    shown: list[str] = []
    for item in query.split("&"):
        name, eq, _value = item.partition("=")
        if not eq:  # a bare value: could be anything
            shown.append("***" if item else item)
        elif unquote(name).strip().lower() in _SHOWN_QUERY_KEYS:
            shown.append(item)
        else:
            shown.append(f"{name}=***")
    return "&".join(shown)


def _seconds(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(f"cache {name} must be seconds >= 0, got {value!r}")


def _count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"cache {name} must be a whole number >= {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True)
class CacheOptions:
    """``AuthConfig(cache=...)``: ``False`` turns caching off, a dict sets fields."""

    enabled: bool = True
    max_entries: int = 10_000
    # How long a resolved session is reused. Entries also end at the
    # session's own expiry; this bounds how long a change made elsewhere
    # (a revoked database session, new callback output) takes to show.
    ttl: float = 60.0
    # How long a token that failed to decode is remembered as "no session",
    # so a flood of one bad cookie costs one decryption.
    negative_ttl: float = 10.0
    # Redis URL of the invalidation bus (``redis://``, ``rediss://``,
    # ``unix://``): sign-outs and updates in one process reach every
    # process's cache. None: invalidation stays in this process.
    bus: str | None = None
    bus_channel: str = "authsession:invalidate"
    # While the bus is unreachable nothing tells this process about sign-outs
    # elsewhere, so entries live at most this long.
    bus_fallback_ttl: float = 5.0
    # Signed-out tokens remembered (each until its expiry); 0 turns it off.
    max_revoked: int = 100_000

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigurationError(f"cache enabled must be True or False, got {self.enabled!r}")
        _count("max_entries", self.max_entries, 1)
        _count("max_revoked", self.max_revoked, 0)
        for name in ("ttl", "negative_ttl", "bus_fallback_ttl"):
            _seconds(name, getattr(self, name))
        if self.bus is not None:
            scheme = self.bus.split("://", 1)[0] if isinstance(self.bus, str) else ""
            if scheme not in BUS_SCHEMES or "://" not in self.bus:
                shown = redact_url(self.bus) if isinstance(self.bus, str) else repr(self.bus)
                raise ConfigurationError(
                    f"cache bus must be a Redis URL such as 'redis://127.0.0.1:6379/0' "
                    f"(schemes: {', '.join(BUS_SCHEMES)}), got {shown}"
                )
        if not isinstance(self.bus_channel, str) or not self.bus_channel.strip():
            raise ConfigurationError(
                f"cache bus_channel must be a non-empty string, got {self.bus_channel!r}"
            )

    def __repr__(self) -> str:
        # The bus URL may carry a password.
        bus = redact_url(self.bus) if self.bus else None
        return (
            f"CacheOptions(enabled={self.enabled!r}, max_entries={self.max_entries!r}, "
            f"ttl={self.ttl!r}, negative_ttl={self.negative_ttl!r}, bus={bus!r}, "
            f"bus_channel={self.bus_channel!r}, bus_fallback_ttl={self.bus_fallback_ttl!r}, "
            f"max_revoked={self.max_revoked!r})"
        )

    @classmethod
    def from_user(cls, value: object) -> CacheOptions:
        if value is None or value is True:
            return cls()
        if value is False:
            return cls(enabled=False)
        if isinstance(value, CacheOptions):
            return value
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise ConfigurationError(
                    f"unknown cache options {sorted(unknown)!r}; known: {sorted(known)!r}"
                )
            return cls(**value)
        raise ConfigurationError(
            f"cache must be True, False, a dict or CacheOptions, got {type(value).__name__}"
        )


class Entry(NamedTuple):
    """A resolution: the session (None: no session) and what to write back.

    A named tuple: one is made per resolution, several times faster than a
    frozen dataclass, and just as immutable.
    """

    session: Session | None
    deadline: float  # time.monotonic() after which the entry is stale
    writes: tuple[CookieWrite, ...] = ()
    # The cookie name the token was read from ("" for a Bearer token), set by
    # the cache. A v5 token decodes only under its own name (the name is the
    # key's salt), so an entry is served only for the name it was resolved
    # for. None: any (an entry put directly, e.g. after an update).
    source: str | None = None
    # When the session's ``expires`` falls (``time.time()``), if the strategy
    # knows without parsing it back; None: the cache parses ``expires``.
    expires_at: float | None = None

    def __repr__(self) -> str:
        # Entries sit in the cache and in tracebacks: the session shows its
        # keys (Session's own repr) and the writes their cookie names, never
        # the personal data or the re-issued token.
        session = self.session
        if session is None or isinstance(session, Session):
            shown = repr(session)
        else:
            shown = f"<{type(session).__name__}>"
        return (
            f"Entry(session={shown}, deadline={self.deadline!r}, "
            f"writes={[w.name for w in self.writes]!r}, source={self.source!r}, "
            f"expires_at={self.expires_at!r})"
        )


# What a signed-out token resolves to while it is on the denylist.
REVOKED = Entry(None, math.inf)
# What waiters get when the leader produced no entry (a sign-out held the slot).
_NO_SESSION = Entry(None, 0.0)


def token_key(token: str, _sha256: Callable[[bytes], Any] = hashlib.sha256) -> bytes:
    try:
        data = token.encode()
    except UnicodeEncodeError:  # lone surrogates (from a percent-decoded cookie)
        data = token.encode("utf-8", "surrogatepass")
    return _sha256(data).digest()  # type: ignore[no-any-return]


class LeaderAbandoned(Exception):
    """The caller resolving a token was cancelled or interrupted; a waiter takes over."""


class _SharedFuture(Future[Entry]):
    """The waiters' view of a resolution. Never cancellable: ``asyncio.wrap_future``
    cancels the wrapped future when the awaiting task is cancelled, and one
    waiter's cancellation must not cancel what every other waiter relies on."""

    def cancel(self) -> bool:
        return False


class Flight:
    """One resolution in progress, shared by every caller that missed meanwhile.

    The future the waiters block on is made only when a second caller
    arrives: most resolutions have no company, and a ``Future`` (with its
    condition variable) costs more than the rest of the bookkeeping.
    """

    __slots__ = ("future", "loop", "source")

    def __init__(self, source: str | None, loop: asyncio.AbstractEventLoop | None) -> None:
        self.source = source
        self.loop = loop  # the leader's running event loop, if any
        self.future: Future[Entry] | None = None

    def waiter(self) -> Future[Entry]:
        """The future to wait on (made by ``claim`` for every follower)."""
        assert self.future is not None, "only followers wait"
        return self.future


_monotonic = time.monotonic

# The loop running in this thread, or None. asyncio's own non-raising
# accessor: get_running_loop() raises in sync code, and that exception costs
# more than the rest of claiming a resolution.
_running_loop = asyncio.events._get_running_loop


def _entry_expiry(entry: Entry) -> float | None:
    """When the entry's session ends, as a ``time.monotonic()`` value (None: unknown).

    A strategy that built ``expires`` itself says when (``expires_at``), which
    saves parsing the ISO string back on every resolution.
    """
    if entry.expires_at is not None:
        return time.monotonic() + (entry.expires_at - time.time())
    return _session_expiry(entry.session)


def _session_expiry(session: Session | None) -> float | None:
    """The session's own ``expires`` as a ``time.monotonic()`` value, if it has one."""
    if session is None:
        return None
    expires = session.get("expires")
    if not isinstance(expires, str):
        return None
    try:
        at = parse_iso(expires).timestamp()
    except (ValueError, OverflowError):
        return None
    return time.monotonic() + (at - time.time())


def log_failure(exc: BaseException) -> None:
    log.error(
        "authsession: session resolution failed (%s: %s); treating the request as signed out",
        type(exc).__name__,
        exc,
        exc_info=exc,
    )


class _Denylist(cachetools.TLRUCache[bytes, float]):
    """Token key -> the wall-clock time after which the token is dead anyway."""

    evictions = 0

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize, ttu=_until, timer=time.time)

    def popitem(self) -> tuple[bytes, float]:
        self.evictions += 1
        if self.evictions == 1:
            log.warning(
                "authsession: more than %d signed-out tokens to remember; the least "
                "recently seen are forgotten (raise cache max_revoked)",
                self.maxsize,
            )
        return super().popitem()


def _until(_key: bytes, until: float, _now: float) -> float:
    return until


# Keys remembered as having carried a live session (``track_live``).
LIVE_MEMORY = 4096


class SessionCache:
    def __init__(self, options: CacheOptions) -> None:
        _CACHES.add(self)  # for the fork handler: see _after_fork_in_child
        self.options = options
        # Fixed for the cache's life (its options are immutable); read on
        # every request by the middleware's look.
        self.enabled = options.enabled
        # An OrderedDict in recency order is the LRU: its lookups and
        # move_to_end run in C, a third of cachetools.LRUCache's cost per hit
        # (which layers Python methods over a dict and a second OrderedDict).
        self._lru: OrderedDict[bytes, Entry] = OrderedDict()
        self.evictions = 0
        # Made at the first sign-out: until then every read skips the
        # denylist check (an expiring-cache lookup, measurable per request).
        self._denied: _Denylist | None = None
        self._lock = threading.Lock()
        self._inflight: dict[bytes, Flight] = {}
        # Set while the invalidation bus is down: no entry outlives it.
        self._ttl_cap: float | None = None
        # With ``track_live``: keys of tokens seen resolving to a live session
        # (most recent last), including ones whose entry has left the LRU.
        self._live: OrderedDict[bytes, None] | None = None
        self.hits = 0
        self.misses = 0
        self.coalesced = 0
        self.invalidations = 0
        self.resolutions = 0
        self.expired = 0
        self.revocations = 0
        self.denied = 0

    # -- entries ---------------------------------------------------------------

    def get(self, key: bytes, source: str | None = None) -> Entry | None:
        """A live entry for ``key``, or None.

        A signed-out token is never here (``revoke`` drops it, ``put`` refuses
        it); ``resolve_async``/``resolve_sync`` answer it with ``REVOKED``.
        """
        if not self.enabled:
            return None
        lru = self._lru
        with self._lock:
            entry = lru.get(key)
            if entry is not None:
                if entry.deadline > _monotonic():
                    cached_for = entry.source
                    if cached_for == source or cached_for is None or source is None:
                        lru.move_to_end(key)
                        self.hits += 1
                        return entry
                    # Resolved for another cookie name: resolve afresh (and replace it).
                else:
                    del self._lru[key]
                    self.expired += 1
            self.misses += 1
        return None

    def hit(self, key: bytes, source: str) -> Entry | None:
        """The middleware's hit path: the entry for ``key`` when it answers
        alone (live, resolved for this cookie name, nothing to write), else
        None and the full lookup decides (and counts) instead.

        ``get`` without the rarer outcomes (an expired entry, one for another
        name), which that full lookup handles: this runs on every signed-in
        request. A hit with cookies to write is the full lookup's to count.
        """
        with self._lock:
            entry = self._lru.get(key)
            if (
                entry is None
                or entry.writes
                or entry.deadline <= _monotonic()
                or (entry.source != source and entry.source is not None)
            ):
                return None
            self._lru.move_to_end(key)
            self.hits += 1
        return entry

    def put(self, key: bytes, entry: Entry, source: str | None = None) -> None:
        expiry = _entry_expiry(entry)
        with self._lock:
            self._store(key, entry, source, expiry)

    def _store(self, key: bytes, entry: Entry, source: str | None, expiry: float | None) -> None:
        """Keep ``entry`` until its deadline, the session's expiry or the TTL cap (lock held)."""
        if not self.enabled or (self._denied is not None and key in self._denied):
            return
        now = time.monotonic()
        deadline = entry.deadline
        if expiry is not None:
            deadline = min(deadline, expiry)
        if self._ttl_cap is not None:
            deadline = min(deadline, now + self._ttl_cap)
        if deadline <= now:
            return
        if deadline != entry.deadline or source != entry.source:
            entry = Entry(entry.session, deadline, entry.writes, source, entry.expires_at)
        lru = self._lru
        lru[key] = entry
        lru.move_to_end(key)
        if len(lru) > self.options.max_entries:
            lru.popitem(last=False)
            self.evictions += 1

    def invalidate(self, key: bytes) -> bool:
        """Forget ``key``; a resolution of it in flight is not cached when it ends."""
        with self._lock:
            return self._drop(key)

    def _drop(self, key: bytes) -> bool:
        # Dropping the flight means later misses resolve afresh instead of
        # joining a resolution that began before this invalidation.
        self._inflight.pop(key, None)
        entry = self._lru.pop(key, None)
        if entry is not None:
            self.invalidations += 1
            if entry.session is not None and self._live is not None:
                # A sign-out drops the entry just before it asks ``was_live``.
                self._note_live(key)
            return True
        return False

    def _note_live(self, key: bytes) -> None:
        """Remember that ``key`` carried a live session (lock held, tracking on)."""
        live = self._live
        assert live is not None
        live[key] = None
        live.move_to_end(key)
        if len(live) > LIVE_MEMORY:
            live.popitem(last=False)

    def track_live(self) -> None:
        """Remember which tokens resolved to a live session, for ``was_live``.

        Off unless asked for: only proxy mode needs it (a jwt proves itself by
        decoding, a database session by its row).
        """
        with self._lock:
            if self._live is None:
                self._live = OrderedDict()

    def was_live(self, key: bytes) -> bool:
        """``key``'s token has been seen carrying a live session in this process.

        True while a session is cached for it, and, with ``track_live``, for
        the last ``LIVE_MEMORY`` tokens resolved live or dropped from the
        cache with a session (a sign-out drops the entry before it revokes).
        A token nobody ever resolved here, such as a random cookie sent to a
        sign-out route, is never "live".
        """
        with self._lock:
            entry = self._lru.get(key)
            if entry is not None and entry.session is not None:
                return True
            live = self._live
            return live is not None and key in live

    def revoke(self, key: bytes, until: float) -> None:
        """Refuse ``key`` until ``until`` (``time.time()``), when the token expires anyway."""
        with self._lock:
            self._drop(key)
            if self.options.max_revoked and until > time.time():
                if self._denied is None:
                    self._denied = _Denylist(self.options.max_revoked)
                self._denied[key] = until
                self.revocations += 1

    def is_revoked(self, key: bytes) -> bool:
        with self._lock:
            denied = self._denied
            return denied is not None and key in denied

    def after_fork(self) -> None:
        """In a forked child (run for every cache by ``_after_fork_in_child``).

        A lock held by another parent thread would never be released, and a
        resolution that thread was running will never settle here: followers
        in the child would wait on it forever, so the child resolves afresh.
        """
        self._lock = threading.Lock()
        self._inflight = {}

    def clear(self) -> None:
        with self._lock:
            self.invalidations += len(self._lru)
            self._lru.clear()
            self._inflight.clear()

    def cap_ttl(self, ttl: float | None) -> None:
        """Bound every entry's life by ``ttl`` seconds (None: lift the bound).

        Set while the invalidation bus is down. Entries cached before were
        promised invalidations that may now be missed, so they are dropped.
        """
        with self._lock:
            self._ttl_cap = ttl
            if ttl is not None:
                self.invalidations += len(self._lru)
                self._lru.clear()
                self._inflight.clear()

    # -- single flight -------------------------------------------------------

    def claim(
        self, key: bytes, source: str | None = None, *, blocking: bool = False
    ) -> tuple[Flight, bool]:
        """The flight for ``key`` and whether this caller leads (must resolve it).

        A follower waits on ``flight.waiter()``. ``blocking``: the caller will
        wait with ``future.result()``. If the resolution runs as a task on the
        event loop this very thread is running, waiting would deadlock, so the
        caller resolves on its own.
        """
        loop = _running_loop()
        with self._lock:
            return self._claim(key, source, loop, blocking)

    def _claim(
        self,
        key: bytes,
        source: str | None,
        loop: asyncio.AbstractEventLoop | None,
        blocking: bool,
    ) -> tuple[Flight, bool]:
        flight = self._inflight.get(key)
        if flight is not None:
            compatible = flight.source is None or source is None or flight.source == source
            deadlocks = blocking and loop is not None and flight.loop is loop
            if compatible and not deadlocks:
                self.coalesced += 1
                if flight.future is None:
                    flight.future = _SharedFuture()
                return flight, False
            # Resolve alone; the result is not cached (the slot is taken).
            return Flight(source, loop), True
        flight = Flight(source, loop)
        self._inflight[key] = flight
        return flight, True

    def _begin(self, key: bytes, source: str | None, blocking: bool) -> tuple[Flight | None, bool]:
        """Refusal check, claim and resolution count under one lock: (None, False) = refused."""
        loop = _running_loop()
        with self._lock:
            denied = self._denied
            if denied is not None and key in denied:
                self.denied += 1
                return None, False
            inflight = self._inflight
            if key not in inflight:  # nobody else resolving it: the usual case, inlined
                flight = inflight[key] = Flight(source, loop)
                self.resolutions += 1
                return flight, True
            flight, leader = self._claim(key, source, loop, blocking)
            if leader:
                self.resolutions += 1
            return flight, leader

    def settle(
        self,
        key: bytes,
        flight: Flight,
        entry: Entry | None,
        error: BaseException | None = None,
    ) -> Entry | None:
        """Publish the leader's outcome; failures reach the waiters but are not cached.

        Returns what the waiters receive (None for an error). A token revoked
        while it was resolving resolves to ``REVOKED``.
        """
        expiry = (
            _entry_expiry(entry) if self.enabled and entry is not None and error is None else None
        )
        with self._lock:
            current = self._inflight.get(key) is flight
            if current:
                del self._inflight[key]
            denied = self._denied
            if denied is not None and key in denied:
                entry = REVOKED
            elif entry is not None and error is None:
                if current and self.enabled:
                    self._store(key, entry, flight.source, expiry)
                if self._live is not None and entry.session is not None:
                    self._note_live(key)
            future = flight.future
        result = None if error is not None else (entry if entry is not None else _NO_SESSION)
        if future is not None:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]
        return result

    @staticmethod
    async def wait_async(future: Future[Entry]) -> Entry:
        return await asyncio.wrap_future(future)

    async def resolve_async(
        self, key: bytes, source: str | None, resolve: Callable[[], Awaitable[Entry]]
    ) -> Entry | None:
        """The entry for ``key``: resolved here, or awaited from whoever is resolving it."""
        while True:
            flight, leader = self._begin(key, source, False)
            if flight is None:
                return REVOKED
            if leader:
                try:
                    entry = await resolve()
                except Exception as exc:
                    log_failure(exc)
                    return self.settle(key, flight, None, exc)
                except BaseException:  # cancelled: a waiter takes over
                    self.settle(key, flight, None, LeaderAbandoned())
                    raise
                return self.settle(key, flight, entry)
            try:
                return await asyncio.wrap_future(flight.waiter())
            except LeaderAbandoned:
                continue
            except Exception:  # the leader logged it
                return None

    def resolve_sync(
        self, key: bytes, source: str | None, resolve: Callable[[], Entry]
    ) -> Entry | None:
        """``resolve_async`` for sync callers: waiting blocks this thread."""
        while True:
            flight, leader = self._begin(key, source, True)
            if flight is None:
                return REVOKED
            if leader:
                try:
                    entry = resolve()
                except Exception as exc:
                    log_failure(exc)
                    return self.settle(key, flight, None, exc)
                except BaseException:  # interrupted: a waiter takes over
                    self.settle(key, flight, None, LeaderAbandoned())
                    raise
                return self.settle(key, flight, entry)
            try:
                return flight.waiter().result()
            except LeaderAbandoned:
                continue
            except Exception:
                return None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            denied = self._denied
            if denied is not None:
                denied.expire()
            return {
                "hits": self.hits,
                "misses": self.misses,
                "coalesced": self.coalesced,
                "resolutions": self.resolutions,
                "evictions": self.evictions,
                "expired": self.expired,
                "invalidations": self.invalidations,
                "size": len(self._lru),
                "max_entries": self.options.max_entries,
                "enabled": self.options.enabled,
                "revocations": self.revocations,
                "revoked": len(denied) if denied is not None else 0,
                "denied": self.denied,
                "ttl_cap": self._ttl_cap,
            }


# Every cache in this process (weakly: a dropped runtime's cache goes away).
_CACHES: weakref.WeakSet[SessionCache] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # Every cache, with a bus or not: a forked child must not wait on a
    # resolution that a parent thread had in flight (that thread is gone).
    for cache in list(_CACHES):
        cache.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
