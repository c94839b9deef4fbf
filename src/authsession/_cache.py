"""The resolved-session cache: LRU-bounded, each entry with its own deadline.

One cache wraps every strategy. Keys are SHA-256 digests of the whole token:
the raw token is never kept or logged, and a session cached for one token can
only be found again by presenting that exact token. Reads take a lock because
cachetools' LRU reorders on every hit; the lock is held for a dict lookup,
never for a resolution.

Single flight: the first miss for a key resolves; concurrent misses for the
same key, from threads or asyncio tasks, wait for that result instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, fields
from typing import Any

import cachetools

from ._cookies import CookieWrite
from ._errors import ConfigurationError
from ._session import Session


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

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_entries, bool)
            or not isinstance(self.max_entries, int)
            or (self.max_entries < 1)
        ):
            raise ConfigurationError(
                f"cache max_entries must be a whole number >= 1, got {self.max_entries!r}"
            )
        for name in ("ttl", "negative_ttl"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigurationError(f"cache {name} must be seconds >= 0, got {value!r}")

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


@dataclass(frozen=True, slots=True)
class Entry:
    """A resolution: the session (None: no session) and what to write back."""

    session: Session | None
    deadline: float  # time.monotonic() after which the entry is stale
    writes: tuple[CookieWrite, ...] = ()


def token_key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class _CountingLRU(cachetools.LRUCache[bytes, Entry]):
    evictions = 0

    def popitem(self) -> tuple[bytes, Entry]:
        self.evictions += 1
        return super().popitem()


class SessionCache:
    def __init__(self, options: CacheOptions) -> None:
        self.options = options
        self._lru = _CountingLRU(maxsize=options.max_entries)
        self._lock = threading.Lock()
        self._inflight: dict[bytes, Future[Entry]] = {}
        self.hits = 0
        self.misses = 0
        self.coalesced = 0
        self.invalidations = 0

    def get(self, key: bytes) -> Entry | None:
        if not self.options.enabled:
            return None
        with self._lock:
            entry = self._lru.get(key)
            if entry is not None:
                if entry.deadline > time.monotonic():
                    self.hits += 1
                    return entry
                del self._lru[key]
            self.misses += 1
        return None

    def put(self, key: bytes, entry: Entry) -> None:
        if self.options.enabled and entry.deadline > time.monotonic():
            with self._lock:
                self._lru[key] = entry

    def invalidate(self, key: bytes) -> None:
        with self._lock:
            if self._lru.pop(key, None) is not None:
                self.invalidations += 1

    def clear(self) -> None:
        with self._lock:
            self.invalidations += len(self._lru)
            self._lru.clear()

    # -- single flight -------------------------------------------------------

    def claim(self, key: bytes) -> tuple[Future[Entry], bool]:
        """The shared future for ``key`` and whether this caller must resolve it."""
        with self._lock:
            future = self._inflight.get(key)
            if future is not None:
                self.coalesced += 1
                return future, False
            future = Future()
            self._inflight[key] = future
            return future, True

    def settle(
        self,
        key: bytes,
        future: Future[Entry],
        entry: Entry | None,
        error: BaseException | None = None,
    ) -> None:
        """Publish the leader's outcome; failures reach the waiters but are not cached."""
        if entry is not None and error is None:
            self.put(key, entry)
        with self._lock:
            if self._inflight.get(key) is future:
                del self._inflight[key]
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(entry if entry is not None else Entry(None, 0.0))

    @staticmethod
    async def wait_async(future: Future[Entry]) -> Entry:
        return await asyncio.wrap_future(future)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "coalesced": self.coalesced,
                "evictions": self._lru.evictions,
                "invalidations": self.invalidations,
                "size": len(self._lru),
                "max_entries": self.options.max_entries,
                "enabled": self.options.enabled,
            }
