"""``AuthRuntime``: one configuration's strategy, cache and cookie rules.

The request path is: read the token from the view, look it up in the cache,
and only on a miss run the strategy's steps (once per token at a time, thanks
to single flight). The async and sync entry points differ only in how they
drive those steps and how they wait for another caller's resolution.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, cast

from ._bridge import drive_async, drive_sync
from ._bus import Invalidator
from ._cache import Entry, Flight, SessionCache, token_key
from ._config import AuthConfig
from ._cookies import (
    _MARKER,
    CookieName,
    CookieWrite,
    FoundCookie,
    all_session_cookies,
    candidate_names,
    clear_cookies,
    cookie_family,
    find_session_cookie,
    lone_session_cookie,
    session_cookie_names,
    stale_cookies,
)
from ._database_strategy import DatabaseStrategy
from ._errors import ConfigurationError
from ._inputs import RUNTIME_KEY, SCOPE_KEY, RequestView, to_view
from ._jwt_strategy import JwtStrategy
from ._proxy_config import ProxyConfig, proxy_mode_unsupported
from ._responses import PENDING_KEY, PendingCookies, apply_writes
from ._session import Session
from ._tokens import find_token
from .jwt._errors import JWTDecodeError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._proxy_strategy import ProxyStrategy

log = logging.getLogger("authsession")
# "No value": nothing stored for the request yet, or (from _session_if_cached)
# only the full path can decide.
MISSING: Any = object()
_sha256 = hashlib.sha256
# How long a sync sign-out waits for a read of the same token to finish.
_SIGN_OUT_WAIT = 10.0


class AuthRuntime:
    """Resolves and writes sessions for one ``AuthConfig``; holds its cache."""

    mode = "local"

    def __init__(self, config: AuthConfig | ProxyConfig) -> None:
        if not isinstance(config, (AuthConfig, ProxyConfig)):
            raise ConfigurationError(
                f"AuthRuntime needs an AuthConfig (or a ProxyConfig for proxy mode), "
                f"got {type(config).__name__}"
            )
        self.config = config
        self.candidates = candidate_names(config.cookie_name, config.secure_cookie)
        self.cache = SessionCache(config.cache_options)
        self.strategy: JwtStrategy | DatabaseStrategy | ProxyStrategy
        if isinstance(config, ProxyConfig):
            # Imported here: proxy mode is the only part of authsession that needs httpx.
            from ._proxy_strategy import ProxyStrategy

            self.mode = "proxy"
            self.strategy = ProxyStrategy(config, self.candidates, self.cache)
        elif config.strategy == "database":
            self.strategy = DatabaseStrategy(config, self.candidates)
        else:
            self.strategy = JwtStrategy(config, self.candidates)
        # Sign-out, update and sign-in invalidate through this: here, and on
        # the bus to every other process when cache={"bus": ...} is set.
        # (A ProxyConfig has every attribute the invalidator reads.)
        self.invalidation = Invalidator(cast(AuthConfig, config), self.candidates, self.cache)
        self._strategy_resolve_sync: Callable[[FoundCookie], Entry] | None = getattr(
            self.strategy, "resolve_sync", None
        )

    def __repr__(self) -> str:
        return f"AuthRuntime({self.config!r})"

    # -- reading -------------------------------------------------------------

    def _finish(self, view: RequestView, entry: Entry | None) -> Session | None:
        session = None
        if entry is not None:
            if entry.writes and view.response is not None:
                apply_writes(view.response, entry.writes)
            session = entry.session
        store = view.store
        if store is not None and store.get(RUNTIME_KEY) is self:
            # Under this runtime's middleware (lazy mode), later reads in the
            # request reuse the result instead of resolving again.
            store[SCOPE_KEY] = session
        return session

    def _owns(self, view: RequestView) -> bool:
        """The request is handled by this runtime's middleware (its scope/environ)."""
        return view.store is not None and view.store.get(RUNTIME_KEY) is self

    def _keep(self, view: RequestView, session: Session | None) -> None:
        """What the rest of this request reads as its session, under our middleware."""
        store = view.store
        if store is not None and store.get(RUNTIME_KEY) is self:
            store[SCOPE_KEY] = session

    def _pending_of(self, view: RequestView) -> PendingCookies | None:
        store = view.store
        pending = store.get(PENDING_KEY) if store is not None else None
        return pending if isinstance(pending, PendingCookies) else None

    def _replace_cookies(self, view: RequestView, response: Any, writes: list[CookieWrite]) -> None:
        """Write a new decision about the session cookie (sign-in, sign-out, update).

        Every session cookie the request carries that ``writes`` do not replace
        is cleared, and earlier pending writes for these cookies (a sliding
        refresh queued before the app ran) are dropped, so only the new
        decision reaches the browser, whatever the chunking on either side.
        """
        if not writes:  # no new decision (a Bearer token, nothing slid): leave cookies be
            return
        writes = [*writes, *stale_cookies(view.cookies, self.candidates, writes)]
        pending = self._pending_of(view)
        if pending is not None:
            families = {cookie_family(w.name) for w in writes}
            families.update(spec.name for spec in self.candidates)
            pending.discard_family(families)
        if response is None:
            response = view.response
        apply_writes(response, writes)

    async def get_session(self, input: Any = None) -> Session | None:
        """The session for any accepted input (see ``get_server_session``)."""
        view = to_view(input)  # the same inlined lookup as get_session_sync
        store = view.store
        if store is not None and store.get(RUNTIME_KEY) is self:
            stored = store.get(SCOPE_KEY, MISSING)
            if stored is not MISSING:
                return stored  # type: ignore[no-any-return]
        cookies = view.cookies
        found = find_session_cookie(cookies, self.candidates) if cookies else None
        if found is None:
            found = find_token(view, self.candidates)  # the Bearer fallback
            if found is None:
                return self._finish(view, None)
        key = token_key(found.value)
        spec = found.spec
        name = spec.name if spec is not None else ""
        entry = self.cache.get(key, name)
        if entry is None:
            entry = await self.cache.resolve_async(
                key, name, lambda: drive_async(self.strategy.resolve(found))
            )
        elif not entry.writes and store is None:
            return entry.session
        return self._finish(view, entry)

    def get_session_sync(self, input: Any = None) -> Session | None:
        """``get_session`` for sync code (WSGI, Flask, Django views)."""
        # The cache-hit path of every request, written out rather than split
        # into helpers (measured: ~0.4 us of a ~3 us hit).
        view = to_view(input)
        store = view.store
        # What the middleware resolved is reused only by its own runtime: a
        # call with another config (a stricter one, a mounted sub-app's) must
        # not get a session read under different rules.
        if store is not None and store.get(RUNTIME_KEY) is self:
            stored = store.get(SCOPE_KEY, MISSING)
            if stored is not MISSING:
                return stored  # type: ignore[no-any-return]
        cookies = view.cookies
        found = find_session_cookie(cookies, self.candidates) if cookies else None
        if found is None:
            found = find_token(view, self.candidates)  # the Bearer fallback
            if found is None:
                return self._finish(view, None)
        try:  # token_key(), inlined
            key = _sha256(found.value.encode()).digest()
        except UnicodeEncodeError:
            key = token_key(found.value)
        spec = found.spec
        name = spec.name if spec is not None else ""
        entry = self.cache.get(key, name)
        if entry is None:
            entry = self.cache.resolve_sync(key, name, lambda: self._resolve_sync(found))
        elif not entry.writes and store is None:
            return entry.session  # a hit with nothing to write and nowhere to keep it
        return self._finish(view, entry)

    def _session_if_cached(self, cookie_header: str | None) -> Any:
        """The middleware's fast path: the session for a request whose only
        credential is this ``Cookie`` header, when it needs no I/O.

        None when the header carries no session cookie; the cached session
        when the cache holds one with nothing to write; ``MISSING`` for
        everything else (a miss, a refresh to write, chunks, quoting), which
        the full ``get_session`` then handles. The caller must have checked
        that the request has no ``Authorization`` header (the Bearer fallback
        is the full path's).
        """
        if not cookie_header or _MARKER not in cookie_header:
            return None  # anonymous traffic: nothing to parse
        if not self.cache.enabled:
            return MISSING  # nothing to find: no parse, no hash
        lone = lone_session_cookie(cookie_header, self.candidates.by_name)
        if lone is None:
            return MISSING
        spec, value = lone
        try:  # token_key(), inlined
            key = _sha256(value.encode()).digest()
        except UnicodeEncodeError:
            return MISSING
        entry = self.cache.hit(key, spec.name)
        return MISSING if entry is None else entry.session

    def _resolve_sync(self, found: FoundCookie) -> Entry:
        # A strategy with its own blocking path (proxy: a pooled sync HTTP
        # client) answers on the calling thread instead of the bridge loop.
        resolve_sync: Callable[[FoundCookie], Entry] | None = self._strategy_resolve_sync
        if resolve_sync is not None:
            return resolve_sync(found)
        return drive_sync(self.strategy.resolve(found))

    async def _follow_async(self, future: Future[Entry]) -> Entry | None:
        try:
            return await SessionCache.wait_async(future)
        except Exception:  # the leader logged it
            return None

    # -- writing -------------------------------------------------------------

    def _write_name(self, view: RequestView | None) -> CookieName:
        """The cookie a new session is written under."""
        config = self.config
        if config.cookie_name:
            return self.candidates[0]
        secure = config.secure_cookie
        if secure is None:
            secure = bool(view is not None and view.https)
        for spec in self.candidates:
            if spec.version == 5 and spec.secure == secure:
                return spec
        return self.candidates[0]

    async def sign_in(
        self,
        user: Mapping[str, Any],
        response: Any = None,
        *,
        request: Any = None,
        account: Any = None,
        profile: Any = None,
        is_new_user: bool = False,
    ) -> str:
        """Start a session for ``user``; returns the new token and writes its cookies."""
        token = self._finish_sign_in(
            await drive_async(self._sign_in_steps(user, request, account, profile, is_new_user)),
            response,
            request,
        )
        view = to_view(request)
        if self._owns(view):  # the rest of this request sees the new session
            self._keep(view, await self.get_session(self._token_view(view, token)))
        return token

    def sign_in_sync(
        self,
        user: Mapping[str, Any],
        response: Any = None,
        *,
        request: Any = None,
        account: Any = None,
        profile: Any = None,
        is_new_user: bool = False,
    ) -> str:
        token = self._finish_sign_in(
            drive_sync(self._sign_in_steps(user, request, account, profile, is_new_user)),
            response,
            request,
        )
        view = to_view(request)
        if self._owns(view):
            self._keep(view, self.get_session_sync(self._token_view(view, token)))
        return token

    def _token_view(self, view: RequestView, token: str) -> RequestView:
        """A request carrying just this token, under the name sign-in wrote it."""
        return RequestView(cookies={self._write_name(view).name: token})

    def _sign_in_steps(
        self, user: Mapping[str, Any], request: Any, account: Any, profile: Any, is_new_user: bool
    ) -> Any:
        if isinstance(self.config, ProxyConfig):
            raise proxy_mode_unsupported(self.config, "sign_in")
        if not isinstance(user, Mapping):
            raise TypeError(f"sign_in needs a user dict, got {type(user).__name__}")
        view = to_view(request)  # None: the request the middleware is handling, if any
        spec = self._write_name(view)
        previous = find_token(view, self.candidates)
        if previous is not None:  # its cookie is being replaced: no process keeps it cached
            self.invalidation.drop(previous.value)
        return self.strategy.sign_in(user, spec, account, profile, is_new_user)

    def _finish_sign_in(self, result: Any, response: Any, request: Any) -> str:
        if result is None:
            raise PermissionError("the jwt callback refused the sign-in (returned None)")
        value, writes = result
        view = to_view(request)  # None: the request the middleware is handling, if any
        # Inside the middleware with no response given, the cookie goes on the
        # current response.
        self._replace_cookies(view, response, list(writes))
        return str(value)

    async def sign_out(self, input: Any, response: Any = None) -> None:
        """End the session: revoke it in the store (database strategy), forget it
        here and clear every cookie chunk."""
        view = to_view(input)
        found_all = self._tokens_to_end(view)
        for found in found_all:
            key = token_key(found.value)
            flight = await self._claim_for_sign_out_async(key)
            try:
                revoke = getattr(self.strategy, "sign_out", None)
                if revoke is not None:
                    await drive_async(revoke(found))
            finally:
                self._release_sign_out(key, flight)
        self._sign_out(view, found_all, response)

    def sign_out_sync(self, input: Any, response: Any = None) -> None:
        view = to_view(input)
        found_all = self._tokens_to_end(view)
        for found in found_all:
            key = token_key(found.value)
            flight = self._claim_for_sign_out_sync(key)
            try:
                revoke = getattr(self.strategy, "sign_out", None)
                if revoke is not None:
                    drive_sync(revoke(found))
            finally:
                self._release_sign_out(key, flight)
        self._sign_out(view, found_all, response)

    def _tokens_to_end(self, view: RequestView) -> list[FoundCookie]:
        """Every session the request carries: each candidate cookie present (a
        browser can hold ``__Secure-`` and plain ones at once), else a Bearer token."""
        found = all_session_cookies(view.cookies, self.candidates)
        if not found:
            bearer = find_token(RequestView(authorization=view.authorization), self.candidates)
            if bearer is not None:
                found.append(bearer)
        return found

    # Sign-out takes the token's single-flight slot: a read already resolving
    # the token finishes first (its entry is then dropped), and a read arriving
    # meanwhile waits and gets no session. So no read that began before the
    # revocation can put the session back into the cache after it.
    async def _claim_for_sign_out_async(self, key: bytes) -> Flight:
        while True:
            flight, leader = self.cache.claim(key)
            if leader:
                return flight
            await self._follow_async(flight.waiter())

    def _claim_for_sign_out_sync(self, key: bytes) -> Flight | None:
        while True:
            # blocking=True: if the reader is a task on the loop this thread
            # runs, the cache hands us a private slot instead of a deadlock.
            flight, leader = self.cache.claim(key, blocking=True)
            if leader:
                return flight
            try:
                flight.waiter().exception(timeout=_SIGN_OUT_WAIT)  # a reader's error: it logged it
            except FutureTimeout:
                # The resolving reader may be on this very thread's blocked
                # event loop; revoke without the slot rather than deadlock.
                return None

    def _release_sign_out(self, key: bytes, flight: Flight | None) -> None:
        self.cache.invalidate(key)
        if flight is not None:
            self.cache.settle(key, flight, None)

    def _sign_out(self, view: RequestView, found_all: list[FoundCookie], response: Any) -> None:
        for found in found_all:
            self.invalidation.revoke(found)  # here and, with a bus, in every process
        self._keep(view, None)
        names = session_cookie_names(view.cookies, self.candidates) or [self._write_name(view).name]
        self._replace_cookies(view, response, clear_cookies(names))

    async def update_session(self, input: Any, data: Any, response: Any = None) -> Session | None:
        """Auth.js ``update()``: re-run the callbacks with ``trigger="update"``."""
        if isinstance(self.config, ProxyConfig):
            raise proxy_mode_unsupported(self.config, "update_session")
        view = to_view(input)
        found = find_token(view, self.candidates)
        if found is None or self.cache.is_revoked(token_key(found.value)):
            return None  # a signed-out token is not turned into a new one
        try:
            result = await drive_async(self.strategy.update(found, data))
        except JWTDecodeError as exc:  # a bad cookie, not a failure: no traceback
            log.info("authsession: update_session: the token was rejected: %s", exc.reason)
            return None
        except Exception as exc:
            _log_failure(exc)
            return None
        return self._finish_update(view, found, result, response)

    def update_session_sync(self, input: Any, data: Any, response: Any = None) -> Session | None:
        if isinstance(self.config, ProxyConfig):
            raise proxy_mode_unsupported(self.config, "update_session")
        view = to_view(input)
        found = find_token(view, self.candidates)
        if found is None or self.cache.is_revoked(token_key(found.value)):
            return None  # a signed-out token is not turned into a new one
        try:
            result = drive_sync(self.strategy.update(found, data))
        except JWTDecodeError as exc:  # a bad cookie, not a failure: no traceback
            log.info("authsession: update_session: the token was rejected: %s", exc.reason)
            return None
        except Exception as exc:
            _log_failure(exc)
            return None
        return self._finish_update(view, found, result, response)

    def _finish_update(
        self, view: RequestView, found: FoundCookie, result: Any, response: Any
    ) -> Session | None:
        session, writes, new_token = result
        self.invalidation.drop(found.value)
        if session is not None and new_token is not None:
            lifetime = min(self.config.cache_options.ttl, self.config.max_age)  # the new exp
            self.cache.put(token_key(new_token), Entry(session, time.monotonic() + lifetime))
        self._keep(view, session)
        self._replace_cookies(view, response, list(writes))
        return session  # type: ignore[no-any-return]

    def cache_stats(self) -> dict[str, Any]:
        return {**self.cache.stats(), **self.invalidation.stats()}

    def close(self) -> None:
        """Stop background work (the invalidation bus) and close pooled connections
        (proxy mode's HTTP clients); the runtime still reads sessions.

        A database adapter belongs to whoever made it: close it with its own
        ``aclose()``.
        """
        self.invalidation.close()
        close_strategy = getattr(self.strategy, "close", None)
        if close_strategy is not None:
            close_strategy()

    async def aclose(self) -> None:
        """``close`` for async shutdown (an ASGI lifespan): stopping the bus waits
        for its thread, so that wait runs off the event loop, and proxy mode's
        async client for this loop is closed on it."""
        await asyncio.to_thread(self.invalidation.close)
        aclose_strategy = getattr(self.strategy, "aclose", None)
        if aclose_strategy is not None:
            await aclose_strategy()
        else:
            close_strategy = getattr(self.strategy, "close", None)
            if close_strategy is not None:
                close_strategy()


def _log_failure(exc: BaseException) -> None:
    log.error(
        "authsession: session resolution failed (%s: %s); treating the request as signed out",
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
