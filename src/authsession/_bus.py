"""Cross-process invalidation: sign-outs and updates reach every process's cache.

Each process keeps its own session cache. When one of them signs a session
out or updates it, the others must stop serving what they cached.
``Invalidator`` applies the change here and, with ``cache={"bus": url}``,
publishes the token's key (SHA-256 hex of the token, never the token) on a
Redis pub/sub channel; every process subscribes from one background thread
with its own event loop and applies what it hears.

Messages are one line each: ``drop <key> 0 <origin>`` forgets a cached entry
(an update replaced the token), ``deny <key> <until> <origin>`` refuses the
token until ``until`` (Unix time), when it would have expired anyway (a
sign-out). A process ignores its own messages (it applied them already).
Denials are also kept in the sorted set ``<channel>:denied`` scored by
``until`` and capped at ``max_revoked`` members (the soonest to expire go
first), which a process loads, latest-expiring first, each time it
(re)subscribes: a process that starts, or reconnects, after a sign-out refuses
that token too.

Only tokens proven live are denied (see ``Invalidator.revoke``): anyone can
call a sign-out route with random cookies, and remembering those would push
real revocations out of the bounded denylist.

While the bus is unreachable this process cannot hear of invalidations, so
cached entries live at most ``bus_fallback_ttl`` seconds (warned once per
outage); it reconnects in the background with exponential backoff and, once
subscribed again, lifts that bound. Messages published meanwhile wait in a
bounded outbox and go out on reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import inspect
import logging
import math
import os
import random
import secrets
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, cast

from ._bridge import LoopThread
from ._cache import SessionCache, redact_url, token_key
from ._config import AuthConfig
from ._cookies import CookieName, FoundCookie
from ._errors import ConfigurationError
from ._tokens import decode_found
from .jwt import CLOCK_TOLERANCE

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger("authsession")

OUTBOX_MAX = 10_000
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0
_OPS = ("drop", "deny")


_LOOP = LoopThread("authsession-bus")
_BUSES: weakref.WeakSet[RedisBus] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A forked worker (gunicorn --preload) has no bus thread: the parent's
    # would otherwise look connected while nothing listens.
    global _LOOP
    _LOOP = LoopThread("authsession-bus")
    for bus in list(_BUSES):
        bus._restart_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class RedisBus:
    """Publishes and applies invalidations for one cache over one Redis channel."""

    def __init__(self, url: str, channel: str, fallback_ttl: float, cache: SessionCache) -> None:
        if importlib.util.find_spec("redis") is None:
            raise ConfigurationError(
                "cache bus needs the redis package: pip install 'authsession[redis]'"
            )
        self.url = url
        self.channel = channel
        self.denied_key = f"{channel}:denied"
        self.fallback_ttl = fallback_ttl
        self.max_revoked = cache.options.max_revoked
        # Weak: a runtime that is dropped stops its bus (see Invalidator).
        self._cache = weakref.ref(cache)
        self.published = 0
        self.received = 0
        self.lost = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.connected = threading.Event()
        self._outbox: deque[str] = deque()
        self._closed = False
        self._init_run_state()
        cache.cap_ttl(fallback_ttl)  # until the subscription is confirmed
        _BUSES.add(self)
        self._start()

    def _init_run_state(self) -> None:
        self.origin = secrets.token_hex(8)
        self.state = "connecting"
        self._warned = False
        self._lock = threading.Lock()  # the outbox is filled from any thread
        self._wake: asyncio.Event | None = None
        self._stopped = threading.Event()
        self._task: Future[None] | None = None
        self._went_up = False

    def _start(self) -> None:
        self._loop = _LOOP.loop()
        self._task = asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    def _restart_after_fork(self) -> None:
        cache = self._cache()
        if self._closed or cache is None:
            return
        self._outbox.clear()  # the parent sends its own
        self.connected.clear()
        self._init_run_state()
        # (The cache's own fork handler has already reset its lock and flights.)
        cache.cap_ttl(self.fallback_ttl)
        self._start()

    def __repr__(self) -> str:
        return f"RedisBus({redact_url(self.url)!r}, {self.channel!r}, state={self.state!r})"

    # -- from any thread ----------------------------------------------------------

    def publish(self, op: str, key: bytes, until: float = 0.0) -> None:
        """Queue ``op`` for ``key``; never blocks and never raises."""
        line = f"{op} {key.hex()} {until:.3f} {self.origin}"
        with self._lock:
            if len(self._outbox) >= OUTBOX_MAX:
                self._outbox.popleft()
                self.lost += 1
            self._outbox.append(line)
        self._kick()

    def _kick(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: closed or forked
            self._loop.call_soon_threadsafe(self._set_wake)

    def _set_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def close(self, timeout: float = 2.0) -> None:
        """Stop listening and close the connections (waits up to ``timeout``)."""
        if self._closed:
            return
        self._closed = True
        _BUSES.discard(self)
        self.connected.clear()
        task = self._task
        if task is not None:
            task.cancel()
            if not _LOOP.on_loop_thread():
                self._stopped.wait(timeout)

    def stats(self) -> dict[str, Any]:
        return {
            "bus": self.state,
            "bus_published": self.published,
            "bus_received": self.received,
            "bus_lost": self.lost,
            "bus_reconnects": self.reconnects,
        }

    # -- on the bus loop ----------------------------------------------------------

    async def _run(self) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        self._wake = asyncio.Event()
        delay = _BACKOFF_FIRST
        try:
            while not self._closed:
                client: Redis = aioredis.Redis.from_url(
                    self.url,
                    socket_connect_timeout=2.0,
                    socket_timeout=5.0,
                    socket_keepalive=True,
                    health_check_interval=10,
                )
                self._went_up = False
                try:
                    await self._connected(client)
                except (RedisError, OSError, asyncio.TimeoutError) as exc:
                    self._down(exc)
                except Exception as exc:  # not expected; still never stop retrying
                    log.debug("authsession: bus error", exc_info=exc)
                    self._down(exc)
                finally:
                    await _aclose(client)
                if self._went_up:  # it had been up: start over quickly
                    delay = _BACKOFF_FIRST
                if self._closed:
                    break
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311
                delay = min(delay * 2, _BACKOFF_MAX)
                self.reconnects += 1
        finally:
            self.state = "closed"
            self.connected.clear()
            self._stopped.set()

    async def _connected(self, client: Redis) -> None:
        pubsub: PubSub = client.pubsub()
        reader: asyncio.Task[None] | None = None
        writer: asyncio.Task[None] | None = None
        try:
            await pubsub.subscribe(self.channel)
            confirmation = await pubsub.get_message(timeout=5.0)
            if not confirmation or confirmation.get("type") != "subscribe":
                raise asyncio.TimeoutError("no subscription confirmation")
            # Subscribed first, then the snapshot: no denial falls in between.
            await self._load_denials(client)
            self._up()
            reader = asyncio.ensure_future(self._read(pubsub))
            writer = asyncio.ensure_future(self._write(client))
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the error that ended the connection
        finally:
            for pending in (reader, writer):
                if pending is not None:
                    pending.cancel()
            await _aclose(pubsub)

    async def _load_denials(self, client: Redis) -> None:
        cache = self._cache()
        if cache is None or cache.options.max_revoked == 0:
            return
        now = time.time()
        await client.zremrangebyscore(self.denied_key, "-inf", now)
        # The latest-expiring first: when there are more than max_revoked,
        # the ones left out are those about to expire anyway.
        rows = cast(
            "list[tuple[bytes, float]]",
            await client.zrevrangebyscore(
                self.denied_key,
                "+inf",
                now,
                start=0,
                num=cache.options.max_revoked,
                withscores=True,
            ),
        )
        # Oldest first into the local LRU, so the latest-expiring end up the
        # most recent and are the last a later overflow forgets.
        for member, until in reversed(rows):
            key = _parse_key(member)
            if key is not None:
                cache.revoke(key, float(until))

    async def _read(self, pubsub: PubSub) -> None:
        while not self._closed:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message.get("type") == "message":
                self._apply(message.get("data"))

    async def _write(self, client: Redis) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            await wake.wait()
            wake.clear()
            with self._lock:
                batch = list(self._outbox)
                self._outbox.clear()
            if not batch:
                continue
            try:
                await self._send(client, batch)
            except BaseException:
                with self._lock:  # sent on reconnection, oldest first
                    self._outbox.extendleft(reversed(batch))
                    while len(self._outbox) > OUTBOX_MAX:
                        self._outbox.popleft()
                        self.lost += 1
                raise
            self.published += len(batch)

    async def _send(self, client: Redis, batch: list[str]) -> None:
        pipe = client.pipeline(transaction=False)
        denials = False
        for line in batch:
            op, key_hex, until, _origin = line.split(" ")
            if op == "deny":
                pipe.zadd(self.denied_key, {key_hex: float(until)})
                denials = True
            pipe.publish(self.channel, line)
        if denials:
            pipe.zremrangebyscore(self.denied_key, "-inf", time.time())
            if self.max_revoked:
                # Bounded like every process's own denylist: keep the
                # max_revoked latest-expiring, drop the soonest-expiring.
                pipe.zremrangebyrank(self.denied_key, 0, -(self.max_revoked + 1))
        await pipe.execute()

    def _apply(self, data: object) -> None:
        text = data.decode("ascii", "replace") if isinstance(data, bytes) else str(data)
        parts = text.split(" ")
        key = _parse_key(parts[1]) if len(parts) == 4 and parts[0] in _OPS else None
        until = _parse_until(parts[2]) if key is not None else None
        if key is None or until is None:
            log.debug("authsession: ignored a malformed message on bus channel %r", self.channel)
            return
        if parts[3] == self.origin:
            return
        cache = self._cache()
        if cache is None:
            self._closed = True
            return
        self.received += 1
        if parts[0] == "drop":
            cache.invalidate(key)
        else:
            cache.revoke(key, until)

    def _up(self) -> None:
        self.state = "connected"
        self._went_up = True
        cache = self._cache()
        if cache is not None:
            cache.cap_ttl(None)
        self._set_wake()  # flush what queued up while down
        if self._warned:
            log.warning(
                "authsession: invalidation bus %s is reachable again; cached sessions "
                "live up to the normal ttl again",
                redact_url(self.url),
            )
            self._warned = False
        self.connected.set()

    def _down(self, exc: BaseException) -> None:
        self.connected.clear()
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.state != "down":
            cache = self._cache()
            if cache is not None:
                cache.cap_ttl(self.fallback_ttl)
        if not self._warned and not self._closed:
            log.warning(
                "authsession: invalidation bus %s unreachable (%s); cached sessions live "
                "at most %gs until it is back; reconnecting in the background",
                redact_url(self.url),
                self.last_error,
                self.fallback_ttl,
            )
            self._warned = True
        self.state = "down"  # last: whoever sees it sees the cap and the warning too


async def _aclose(resource: Redis | PubSub) -> None:
    """Close a client or pubsub, whatever redis-py 5.x calls it; never raises.

    ``aclose()`` arrived in redis 5.0.1; before it, ``close()`` was the
    coroutine. Skipping the close would leak a connection per reconnection.
    """
    close = getattr(resource, "aclose", None) or getattr(resource, "close", None)
    if close is None:
        return
    with contextlib.suppress(Exception):
        result = close()
        if inspect.isawaitable(result):
            await result


def _parse_key(value: object) -> bytes | None:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    if not isinstance(text, str) or len(text) != 64:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def _parse_until(value: str) -> float | None:
    try:
        until = float(value)
    except ValueError:
        return None
    return until if math.isfinite(until) else None


class Invalidator:
    """The runtime's one call for "this token's session changed": here, then everywhere."""

    def __init__(
        self, config: AuthConfig, candidates: tuple[CookieName, ...], cache: SessionCache
    ) -> None:
        self.config = config
        self.candidates = candidates
        self.cache = cache
        options = config.cache_options
        self.bus: RedisBus | None = None
        strategy: str = config.strategy  # "proxy" from a ProxyConfig (see the runtime)
        if strategy == "proxy":
            # Nothing here can prove a proxied token live but having seen it resolve.
            cache.track_live()
        if options.bus:
            self.bus = RedisBus(options.bus, options.bus_channel, options.bus_fallback_ttl, cache)
            # The runtime (and its cache) dropped: stop listening for it.
            weakref.finalize(cache, self.bus.close, 0.0)

    def drop(self, token: str) -> None:
        """Forget ``token``'s cached session in every process (it was replaced)."""
        key = token_key(token)
        self.cache.invalidate(key)
        if self.bus is not None:
            self.bus.publish("drop", key)

    def revoke(self, found: FoundCookie, live: bool | None = None) -> None:
        """Sign-out: every process forgets the session and refuses the token until it expires.

        Anyone can call a sign-out route with any cookie, so only a token
        proven to carry a live session is refused (the denylist is bounded:
        random cookies must not push real revocations out of it):

        - jwt: the token decodes;
        - proxy: this process has seen it resolve to a session (cached now,
          or recently; see ``SessionCache.was_live``), or the caller says so
          with ``live=True``;
        - database: never. Deleting the row ended the session everywhere; the
          other processes only drop what they cached.

        ``live=False``: the caller knows there is no session to refuse.
        """
        key = token_key(found.value)
        until = None if live is False else self._until(found, key, live)
        if until is None:  # not a live session: there is nothing to refuse
            self.cache.invalidate(key)
            if self.bus is not None:
                self.bus.publish("drop", key)
            return
        self.cache.revoke(key, until)
        if self.bus is not None:
            self.bus.publish("deny", key, until)

    def _until(self, found: FoundCookie, key: bytes, live: bool | None) -> float | None:
        """When the token stops being accepted anyway; None if it is not to be refused."""
        slack = CLOCK_TOLERANCE + 1
        strategy = self.config.strategy
        if strategy == "database":
            return None  # the deleted row is authoritative
        if strategy == "jwt":
            try:
                claims, _ = decode_found(found, self.config.secrets, self.candidates)
            except Exception:  # undecodable (or expired): no session to revoke
                return None
            exp = claims.get("exp")
            if isinstance(exp, (int, float)) and not isinstance(exp, bool):
                return float(exp) + slack
        elif not (live or self.cache.was_live(key)):  # proxy: never seen live here
            return None
        # An upstream session's expiry can slide, but never past now + max_age.
        return time.time() + self.config.max_age + slack

    def stats(self) -> dict[str, Any]:
        if self.bus is None:
            return {"bus": "off"}
        return self.bus.stats()

    def close(self) -> None:
        if self.bus is not None:
            self.bus.close()
