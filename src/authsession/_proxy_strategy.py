"""The ``proxy`` strategy: the upstream Auth.js app says whose session a cookie is.

``resolve(found)`` is one steps generator, as for the other strategies: build
the request, yield one upstream call, interpret the reply (all sans-I/O, in
``_proxy_protocol``). What differs between sync and async callers is only who
answers that yield:

* async (``drive_async``): the call is awaited on the caller's loop, with
  that loop's pooled ``httpx.AsyncClient`` (connections belong to the loop
  that opened them, so there is one client per loop, never shared);
* sync (``resolve_sync``, used by the runtime's sync path): the same
  generator, its call answered by one pooled, thread-safe ``httpx.Client`` on
  the calling thread. Blocking a worker thread on a socket is what sync code
  does anyway; hopping to the bridge's background loop would only add a
  thread switch and serialise every sync caller on one loop.

Failures never raise: a dead, slow or confused upstream reads as "no session"
for that request, is not cached, and feeds the circuit breaker.

``timeout`` is the budget of one attempt as a whole (connect, send, the whole
response), not httpx's per-read timeout, which an upstream sending its body a
byte at a time would reset forever: async attempts are cancelled at the
deadline; sync ones cap every httpx wait at what is left of the budget and
stop reading the body once it is spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import logging
import random
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx

from ._bridge import Steps, close_steps, run_sync
from ._cache import Entry, SessionCache, token_key
from ._cookies import CookieName, FoundCookie
from ._proxy_config import ProxyConfig, proxy_mode_unsupported
from ._proxy_protocol import (
    MAX_BODY,
    Outcome,
    Reply,
    UpstreamHealth,
    UpstreamRequest,
    backoff_delay,
    build_request,
    csrf_from,
    interpret,
    is_refusal,
    reissued_token,
    session_cookie_matcher,
    sign_out_problem,
)

log = logging.getLogger("authsession")

# Failures of the exchange itself. Anything else is a bug and propagates (the
# runtime logs it with its traceback and reads the request as signed out).
_TRANSPORT_ERRORS = (httpx.HTTPError, httpx.InvalidURL, OSError)
# Failures where the request never reached the application: refused or reset
# connects, DNS, and a pooled keep-alive connection the server had already
# closed. A GET is safe to send again. Timeouts are not retried: `timeout` is
# the budget for one attempt, and retrying a slow upstream only makes every
# waiting request slower (and the upstream busier) during a brown-out.
_RETRYABLE = (httpx.ConnectError, httpx.RemoteProtocolError)


class _RejectAllCookies(http.cookiejar.DefaultCookiePolicy):
    """httpx clients keep a cookie jar; ours must never keep or send one.

    A session cookie the upstream sets for one user would otherwise ride along
    on the next user's request. The Cookie header is built per request instead.
    """

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# The shortest wait handed to httpx once the budget is spent: a timeout of 0
# would make sockets non-blocking, and a refused non-blocking connect reads as
# a (retried) ConnectError instead of a timeout.
_MIN_WAIT = 0.001


class AttemptTimeouts(dict[str, float]):
    """httpx's ``timeout`` extension for one attempt: each wait capped by the budget left.

    httpcore reads ``connect``, ``write``, ``read`` and ``pool`` from this
    mapping with ``.get`` as each phase of the exchange starts, so a phase
    that starts late gets only what is left. A phase made of many reads (the
    body) is bounded by ``check()`` between them.
    """

    def __init__(self, budget: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(connect=budget, read=budget, write=budget, pool=budget)
        self.budget = budget
        self.clock = clock
        self.deadline = clock() + budget

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self:
            return default
        return max(_MIN_WAIT, min(super().__getitem__(key), self.remaining()))

    def __getitem__(self, key: str) -> float:
        value: float = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def check(self) -> None:
        """Raise ``httpx.ReadTimeout`` once the budget is spent."""
        if self.remaining() <= 0:
            raise httpx.ReadTimeout(f"no complete response within {self.budget:g}s")


class _ThreadedTransport(httpx.AsyncBaseTransport):
    """A sync-only transport (e.g. ``httpx.HTTPTransport(cert=...)``) for the async client.

    The exchange runs in a worker thread and the raw body is read there, so
    one transport (one connection pool, one TLS setup) serves both paths.
    """

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await asyncio.to_thread(self._exchange, request)

    def _exchange(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        # The awaiting side gives up at the deadline; this thread stops
        # reading then too, rather than holding a connection for a trickle.
        timeouts = request.extensions.get("timeout")
        check = timeouts.check if isinstance(timeouts, AttemptTimeouts) else None
        try:
            chunks = []
            for chunk in response.iter_raw():
                chunks.append(chunk)
                if check is not None:
                    check()
            content = b"".join(chunks)
        except httpx.StreamConsumed:  # built in memory (a test double): already read
            content = response.content
        finally:
            response.close()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=content,
            extensions=response.extensions,
        )


class UpstreamHttp:
    """The I/O half: pooled clients, retries with backoff. Never raises for network trouble."""

    def __init__(self, config: ProxyConfig, rng: Callable[[], float] = random.random) -> None:
        self.config = config
        self.rng = rng
        self.calls = 0  # attempts made, for stats and tests
        self._lock = threading.Lock()
        self._sync_client: httpx.Client | None = None
        self._async_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    # -- clients -------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        return {
            "timeout": httpx.Timeout(self.config.timeout_seconds),
            "follow_redirects": False,  # a redirect must not carry the cookie elsewhere
            "cookies": http.cookiejar.CookieJar(policy=_RejectAllCookies()),
        }

    def sync_client(self) -> httpx.Client:
        with self._lock:
            if self._sync_client is None:
                transport = self.config.transport
                self._sync_client = httpx.Client(transport=transport, **self._options())
            return self._sync_client

    def async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.get(loop)
            if client is None:
                # A closed loop's connections are dead; forget its client.
                for old in [old for old in self._async_clients if old.is_closed()]:
                    del self._async_clients[old]
                transport = self.config.transport
                if transport is not None and not callable(
                    getattr(transport, "handle_async_request", None)
                ):
                    transport = _ThreadedTransport(transport)
                client = httpx.AsyncClient(transport=transport, **self._options())
                self._async_clients[loop] = client
            return client

    def close(self) -> None:
        """Close the sync client, and every async client whose loop still runs."""
        with self._lock:
            client, self._sync_client = self._sync_client, None
            clients, self._async_clients = self._async_clients, {}
        if client is not None:
            client.close()
        for loop, async_client in clients.items():
            _close_on_its_loop(loop, async_client)

    async def aclose(self) -> None:
        """Close the running loop's async client (other loops' cannot be closed from here)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async_clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    # -- one exchange, with retries ------------------------------------------

    def _retry_delay(self, exc: BaseException, attempt: int) -> float | None:
        if not isinstance(exc, _RETRYABLE) or attempt >= self.config.retries:
            return None
        return backoff_delay(attempt, self.config.backoff_base, self.config.backoff_max, self.rng)

    def fetch_sync(self, request: UpstreamRequest) -> Reply:
        client = self.sync_client()
        attempt = 0
        while True:
            self.calls += 1
            try:
                return self._read_sync(client, request, self.config.timeout_seconds)
            except _TRANSPORT_ERRORS as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    return Reply(error=_describe(exc))
            time.sleep(delay)
            attempt += 1

    async def fetch_async(self, request: UpstreamRequest) -> Reply:
        client = self.async_client()
        budget = self.config.timeout_seconds
        attempt = 0
        while True:
            self.calls += 1
            try:
                return await asyncio.wait_for(self._read_async(client, request, budget), budget)
            except asyncio.TimeoutError:  # the builtin TimeoutError from 3.11 on
                return Reply(error=f"TimeoutError: no complete response within {budget:g}s")
            except _TRANSPORT_ERRORS as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    return Reply(error=_describe(exc))
            await asyncio.sleep(delay)
            attempt += 1

    @staticmethod
    def _read_sync(client: httpx.Client, request: UpstreamRequest, budget: float) -> Reply:
        timeouts = AttemptTimeouts(budget)
        with client.stream(
            request.method,
            request.url,
            headers=request.headers,
            content=request.body,
            extensions={"timeout": timeouts},
        ) as response:
            timeouts.check()  # the headers alone may have used it all
            body = bytearray()
            for chunk in response.iter_bytes():
                timeouts.check()
                body += chunk
                if len(body) > MAX_BODY:
                    break
            return _reply(response, body)

    @staticmethod
    async def _read_async(
        client: httpx.AsyncClient, request: UpstreamRequest, budget: float
    ) -> Reply:
        # wait_for around this bounds the whole; the capped waits also bound
        # a sync transport's worker thread (_ThreadedTransport).
        async with client.stream(
            request.method,
            request.url,
            headers=request.headers,
            content=request.body,
            extensions={"timeout": AttemptTimeouts(budget)},
        ) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY:
                    break
            return _reply(response, body)


_CLOSING: set[asyncio.Task[None]] = set()  # keeps fire-and-forget closes alive


def _close_on_its_loop(loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> None:
    """Close ``client`` on the loop that owns its connections, if that loop still runs.

    A closed loop took its connections' fate with it; a loop that is not
    running (and not closed) cannot be driven safely from here, and its
    sockets are released when the client is collected.
    """
    if loop.is_closed() or not loop.is_running():
        return
    try:
        current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if current is loop:
        task = loop.create_task(client.aclose())
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)
        return
    done = asyncio.run_coroutine_threadsafe(client.aclose(), loop)
    with contextlib.suppress(Exception):
        done.result(timeout=1.0)


def _reply(response: httpx.Response, body: bytearray) -> Reply:
    return Reply(
        response.status_code,
        tuple(response.headers.get_list("set-cookie")),
        bytes(body[:MAX_BODY]),
        truncated=len(body) > MAX_BODY,
        location=response.headers.get("location"),
    )


class _Fetch:
    """The one thing a proxy resolution waits for: awaitable for ``drive_async``
    (and ``drive_sync``'s bridge loop), answered directly by ``resolve_sync``."""

    __slots__ = ("http", "request")

    def __init__(self, http: UpstreamHttp, request: UpstreamRequest) -> None:
        self.http = http
        self.request = request

    def __await__(self) -> Generator[Any, None, Reply]:
        return self.http.fetch_async(self.request).__await__()


def _redacted_target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class ProxyStrategy:
    """Sessions from ``GET {upstream}{base_path}/session``, cached like any other."""

    def __init__(
        self,
        config: ProxyConfig,
        candidates: tuple[CookieName, ...],
        cache: SessionCache,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.candidates = candidates
        self.cache = cache
        self.cache_ttl = config.cache_options.ttl
        self.negative_ttl = config.cache_options.negative_ttl
        self.http = UpstreamHttp(config, rng)
        # A sync attempt may overrun its deadline by one last capped wait.
        worst_attempt = config.timeout_seconds * 2
        self.health = UpstreamHealth(
            _redacted_target(config.session_url),
            config.breaker_threshold,
            config.breaker_cooldown,
            trial_timeout=(config.retries + 1) * (worst_attempt + config.backoff_max) + 1.0,
        )
        self.matches = session_cookie_matcher(candidates) if config.forward_set_cookie else None
        self._refusals_seen: set[int] = set()

    # -- reading -------------------------------------------------------------

    def resolve(self, found: FoundCookie) -> Steps[Entry]:
        """Steps from a found token to a cache entry; the only I/O is the yielded call."""
        if not self.health.admit():
            return Entry(None, 0.0)  # circuit open: fail fast, nothing cached
        outcome: Outcome | None = None
        refused = False
        try:
            request = build_request(
                self.config.session_url, self.config.header_pairs, found, self.candidates
            )
            reply = yield _Fetch(self.http, request)
            outcome = interpret(reply, self.matches)
            refused = is_refusal(reply)
        finally:
            if outcome is None or refused:
                # Cancelled, a bug, or this request refused (a 4xx): no verdict
                # on the upstream's health, and a half-open trial slot is freed.
                self.health.abandon()
            else:
                self.health.record(outcome.kind != "failure", outcome.reason)
        if refused:
            self._note_refusal(reply.status)
        return self._entry(found, outcome)

    def _note_refusal(self, status: int) -> None:
        # A 4xx for every request is a configuration problem (a wrong
        # base_path, a header the upstream requires): warn once per status.
        # Once, because any client can cause one (an oversized cookie).
        if status in self._refusals_seen:
            return
        self._refusals_seen.add(status)
        log.warning(
            "authsession: proxy upstream %s refused a session request with HTTP %d; it reads "
            "as signed out (not an outage). If every request gets this, check base_path and "
            "the headers the upstream requires; further HTTP %d answers are logged at INFO",
            self.health.target,
            status,
            status,
        )

    def resolve_sync(self, found: FoundCookie) -> Entry:
        """``resolve`` for sync callers: the upstream call made on this thread."""
        steps = self.resolve(found)
        try:
            step = steps.send(None)
            while True:
                try:
                    if isinstance(step, _Fetch):
                        result: Any = self.http.fetch_sync(step.request)
                    else:  # not yielded today; kept correct for any future awaitable
                        result = run_sync(step)
                except Exception as exc:
                    step = steps.throw(exc)
                else:
                    step = steps.send(result)
        except StopIteration as stop:
            entry: Entry = stop.value
            return entry
        except BaseException:  # e.g. Ctrl-C in a blocking read: free the breaker's trial now
            close_steps(steps)
            raise

    def _entry(self, found: FoundCookie, outcome: Outcome) -> Entry:
        now = time.monotonic()
        if outcome.kind == "failure":
            # A deadline already past: the cache never stores it, and the
            # next request asks the upstream again (unless the breaker is open).
            return Entry(None, 0.0)
        if outcome.kind == "none":
            if outcome.reason:
                log.info("authsession: proxy upstream: no session (%s)", outcome.reason)
            return Entry(None, now + self.negative_ttl, outcome.writes)
        assert outcome.expires_at is not None
        lifetime = min(self.cache_ttl, outcome.expires_at - time.time())
        entry = Entry(outcome.session, now + lifetime, outcome.writes)
        if outcome.writes:
            # Auth.js re-issues the cookie on every session call. The client's
            # next request carries the new value: seed the cache with it, or
            # every request would miss and re-issue again.
            token = reissued_token(outcome.writes, self.candidates)
            if token is not None and token != found.value:
                self.cache.put(token_key(token), Entry(outcome.session, entry.deadline))
        return entry

    # -- writing: the upstream owns sessions ---------------------------------

    def sign_out(self, found: FoundCookie) -> Steps[None]:
        """With ``sign_out_upstream=True``, Auth.js's own sign-out for the token.

        A database upstream then deletes the session row; a JWT upstream has
        nothing to revoke. Failures are logged, never raised: the local
        sign-out (cookies cleared, the token refused here) happens anyway.
        """
        if not self.config.sign_out_upstream:
            return
        if self.health.state == "open":  # known down: do not make sign-out wait for it
            log.warning(
                "authsession: the proxy upstream %s is unavailable (circuit open); the session "
                "was ended here only",
                self.health.target,
            )
            return
        base = f"{self.config.upstream_url}{self.config.base_path}"
        headers = self.config.header_pairs
        reply = yield _Fetch(
            self.http, build_request(f"{base}/csrf", headers, found, self.candidates)
        )
        csrf = csrf_from(reply)
        problem: str | None
        if isinstance(csrf, str):
            problem = csrf
        else:
            token, cookie = csrf
            request = build_request(
                f"{base}/signout",
                headers,
                found,
                self.candidates,
                extra_cookie=cookie,
                form={"csrfToken": token, "callbackUrl": self.config.upstream_url},
            )
            problem = sign_out_problem((yield _Fetch(self.http, request)))
        if problem is None:
            log.debug("authsession: signed out at the proxy upstream %s", self.health.target)
        else:
            log.warning(
                "authsession: sign-out at the proxy upstream %s failed (%s); the session was "
                "ended here only",
                self.health.target,
                problem,
            )

    def sign_in(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise proxy_mode_unsupported(self.config, "sign_in")

    def update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise proxy_mode_unsupported(self.config, "update_session")

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        self.http.close()

    async def aclose(self) -> None:
        await self.http.aclose()
        self.http.close()

    def stats(self) -> dict[str, Any]:
        return {"upstream_calls": self.http.calls, **self.health.stats()}
