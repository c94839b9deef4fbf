"""Proxy mode against a real Auth.js (``Auth()`` from ``@auth/core`` under node).

A real Credentials sign-in makes the cookies; proxy mode must return exactly
the session JSON the server's own ``/api/auth/session`` returns. Like the
interop suite, these tests skip without node locally and fail under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from authsession import AuthRuntime, ProxyConfig, Session
from interop._harness import (
    BIG_CLAIM,
    SECRET,
    AuthJsServer,
    apply_set_cookies,
    cookie_header,
    ensure_node_modules,
    get_session,
    get_session_json,
    parse_set_cookie,
    session_cookie_value,
    sign_in,
)

pytestmark = pytest.mark.interop

EXPIRES_SLACK = 5.0  # seconds between the direct call and the proxied one


class CountingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Real HTTP (one sync pool, one async pool per loop) that counts upstream requests."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self._sync = httpx.HTTPTransport()
        self._async: dict[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport] = {}

    def _count(self) -> None:
        with self._lock:
            self.calls += 1

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._count()
        return self._sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._count()
        loop = asyncio.get_running_loop()
        with self._lock:
            inner = self._async.setdefault(loop, httpx.AsyncHTTPTransport())
        return await inner.handle_async_request(request)

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        with self._lock:
            inner = self._async.pop(asyncio.get_running_loop(), None)
        if inner is not None:
            await inner.aclose()


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, AuthJsServer]]:
    ensure_node_modules()  # skip (or fail under CI=true) without node
    started: dict[str, AuthJsServer] = {}
    try:
        started["plain"] = AuthJsServer(SECRET).start()
        started["secure"] = AuthJsServer(SECRET, secure_cookies=True).start()
        started["chunked"] = AuthJsServer(SECRET, big_claim=BIG_CLAIM).start()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture
def runtime_for() -> Iterator[Any]:
    made: list[tuple[AuthRuntime, CountingTransport]] = []

    def make(base_url: str, **options: Any) -> tuple[AuthRuntime, CountingTransport]:
        transport = options.pop("transport", None) or CountingTransport()
        runtime = AuthRuntime(ProxyConfig(upstream_url=base_url, transport=transport, **options))
        made.append((runtime, transport))
        return runtime, transport

    yield make
    for runtime, _ in made:
        runtime.strategy.close()  # type: ignore[union-attr]


def without_expires(session: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(session).items() if k != "expires"}


def expires_at(session: Any) -> float:
    return time.mktime(time.strptime(session["expires"], "%Y-%m-%dT%H:%M:%S.%fZ"))


def assert_same_session(proxied: Session | None, direct: Any) -> None:
    assert direct is not None, "the Auth.js server itself returned no session"
    assert proxied is not None, "proxy mode returned no session"
    assert isinstance(proxied, Session)
    assert without_expires(proxied) == without_expires(direct)
    assert abs(expires_at(proxied) - expires_at(direct)) <= EXPIRES_SLACK


@pytest.mark.parametrize("kind", ["plain", "secure", "chunked"])
def test_proxy_returns_the_upstreams_own_session(
    servers: dict[str, AuthJsServer], runtime_for: Any, kind: str
) -> None:
    server = servers[kind]
    signed_in = sign_in(server.base_url, f"proxy-{kind}")
    if kind == "chunked":
        assert any(name.endswith(".1") for name in signed_in.cookies), signed_in.cookies
    runtime, transport = runtime_for(server.base_url)
    # The browser's whole jar goes in (csrf and callback-url cookies too).
    proxied = runtime.get_session_sync(cookie_header(signed_in.jar))
    direct = get_session_json(server.base_url, signed_in.cookies)
    assert_same_session(proxied, direct)
    assert proxied is not None
    assert proxied.user.name == f"proxy-{kind}"
    if kind == "chunked":
        assert proxied.user.id == f"user-proxy-{kind}"
    assert transport.calls == 1


async def test_async_proxy_returns_the_upstreams_own_session(
    servers: dict[str, AuthJsServer], runtime_for: Any
) -> None:
    server = servers["plain"]
    signed_in = sign_in(server.base_url, "proxy-async")
    runtime, transport = runtime_for(server.base_url)
    proxied = await runtime.get_session(cookie_header(signed_in.cookies))
    assert_same_session(proxied, get_session_json(server.base_url, signed_in.cookies))
    await runtime.strategy.aclose()
    await transport.aclose()


def test_a_bad_cookie_reads_as_no_session_and_the_clearing_is_relayed(
    servers: dict[str, AuthJsServer], runtime_for: Any
) -> None:
    server = servers["plain"]
    runtime, _ = runtime_for(server.base_url)
    headers: list[tuple[str, str]] = []
    assert runtime.get_session_sync(("authjs.session-token=not-a-jwe", headers)) is None
    written = [parse_set_cookie(value) for _, value in headers]
    assert [c.name for c in written] == ["authjs.session-token"]
    assert written[0].deletes


def test_the_reissued_cookie_is_relayed_valid_and_already_cached(
    servers: dict[str, AuthJsServer], runtime_for: Any
) -> None:
    server = servers["plain"]
    signed_in = sign_in(server.base_url, "proxy-relay")
    runtime, transport = runtime_for(server.base_url)
    headers: list[tuple[str, str]] = []
    first = runtime.get_session_sync((cookie_header(signed_in.cookies), headers))
    assert first is not None
    relayed = [value for _, value in headers]
    names = [parse_set_cookie(value).name for value in relayed]
    # Only the session cookie: Auth.js's csrf / callback-url cookies for this
    # cookieless call stay with Auth.js.
    assert names == ["authjs.session-token"], relayed
    jar = dict(signed_in.cookies)
    apply_set_cookies(jar, relayed)
    assert jar["authjs.session-token"] != signed_in.cookies["authjs.session-token"]
    # The browser's new cookie is a real Auth.js session ...
    assert get_session_json(server.base_url, jar)["user"]["name"] == "proxy-relay"
    # ... and proxy mode already has it cached: no second upstream call.
    assert runtime.get_session_sync(cookie_header(jar)) == first
    assert transport.calls == 1


def test_a_stopped_upstream_reads_as_no_session_quickly(runtime_for: Any) -> None:
    ensure_node_modules()
    server = AuthJsServer(SECRET).start()
    try:
        signed_in = sign_in(server.base_url, "proxy-stopped")
        base_url = server.base_url
    finally:
        server.stop()
    runtime, transport = runtime_for(base_url, timeout=2.0, retries=2)
    started = time.perf_counter()
    assert runtime.get_session_sync(cookie_header(signed_in.cookies)) is None
    assert time.perf_counter() - started < 2.0
    assert transport.calls == 3  # refused connections are retried


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server on loopback that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def test_a_silent_upstream_times_out(runtime_for: Any) -> None:
    with silent_server() as port:
        runtime, transport = runtime_for(f"http://127.0.0.1:{port}", timeout=0.5, retries=2)
        started = time.perf_counter()
        assert runtime.get_session_sync("authjs.session-token=abc") is None
        elapsed = time.perf_counter() - started
        assert 0.4 <= elapsed < 3.0, elapsed
        assert transport.calls == 1  # a read timeout is not retried

        async def read() -> Session | None:
            try:
                return await runtime.get_session("authjs.session-token=def")
            finally:
                await runtime.strategy.aclose()
                await transport.aclose()

        started = time.perf_counter()
        assert asyncio.run(read()) is None
        assert 0.4 <= time.perf_counter() - started < 3.0


async def test_200_concurrent_tasks_make_one_upstream_call(
    servers: dict[str, AuthJsServer], runtime_for: Any
) -> None:
    server = servers["plain"]
    signed_in = sign_in(server.base_url, "proxy-tasks")
    runtime, transport = runtime_for(server.base_url)
    cookie = cookie_header(signed_in.cookies)
    results = await asyncio.gather(*(runtime.get_session(cookie) for _ in range(200)))
    assert all(r is not None and r.user.name == "proxy-tasks" for r in results)
    assert transport.calls == 1
    await runtime.strategy.aclose()
    await transport.aclose()


def test_200_concurrent_sync_requests_make_one_upstream_call(
    servers: dict[str, AuthJsServer], runtime_for: Any
) -> None:
    server = servers["plain"]
    signed_in = sign_in(server.base_url, "proxy-threads")
    runtime, transport = runtime_for(server.base_url)
    cookie = cookie_header(signed_in.cookies)
    workers = 50
    barrier = threading.Barrier(workers)

    def read(index: int) -> Session | None:
        if index < workers:
            barrier.wait()  # the first wave starts together, to race the miss
        return runtime.get_session_sync(cookie)

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(read, range(200)))
    assert all(r is not None and r.user.name == "proxy-threads" for r in results)
    assert transport.calls == 1


def test_the_upstreams_no_session_answer(
    servers: dict[str, AuthJsServer], runtime_for: Any
) -> None:
    """Without a session Auth.js answers `null`; proxy mode gives None, and
    a Bearer token the upstream cannot read gives None too."""
    server = servers["plain"]
    runtime, _ = runtime_for(server.base_url)
    assert get_session(server.base_url, {}).json is None
    assert runtime.get_session_sync({"Authorization": "Bearer not-a-token"}) is None
    signed_in = sign_in(server.base_url, "proxy-bearer")
    token = signed_in.cookies["authjs.session-token"]
    session = runtime.get_session_sync({"Authorization": f"Bearer {token}"})
    assert session is not None and session.user.name == "proxy-bearer"


class RecordingTransport(CountingTransport):
    """CountingTransport that also keeps each request's Cookie header."""

    def __init__(self) -> None:
        super().__init__()
        self.cookie_headers: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.cookie_headers.append(request.headers.get("cookie", ""))
        return super().handle_request(request)


def cookie_names(header: str) -> set[str]:
    """The cookie names in a Cookie header, chunk suffixes (``.0``, ``.1``) dropped."""
    names = set()
    for pair in header.split("; "):
        name = pair.split("=", 1)[0]
        base, _, index = name.rpartition(".")
        names.add(base if index.isdigit() else name)
    return names


@pytest.mark.parametrize("kind", ["plain", "secure"])
def test_a_bearer_token_goes_only_under_the_v5_names_and_auth_js_reads_it(
    servers: dict[str, AuthJsServer], runtime_for: Any, kind: str
) -> None:
    """An Auth.js token (it has a `kid`) is sent under the two v5 names only,
    and the upstream, whichever of them it uses, reads it."""
    server = servers[kind]
    signed_in = sign_in(server.base_url, f"proxy-bearer-{kind}")
    token = session_cookie_value(signed_in.cookies, server.session_cookie_name)
    transport = RecordingTransport()
    runtime, _ = runtime_for(server.base_url, transport=transport)
    session = runtime.get_session_sync({"Authorization": f"Bearer {token}"})
    assert session is not None and session.user.name == f"proxy-bearer-{kind}"
    (header,) = transport.cookie_headers
    assert cookie_names(header) == {"__Secure-authjs.session-token", "authjs.session-token"}


def test_a_bearer_token_too_large_for_two_names_needs_secure_cookie(
    servers: dict[str, AuthJsServer], runtime_for: Any
) -> None:
    """An 8.5 kB token under both v5 names is more than node's 16 kB header
    limit: the 431 reads as no session (not an outage). With `secure_cookie`
    set it goes under the one name the upstream reads, in chunks."""
    server = servers["chunked"]
    signed_in = sign_in(server.base_url, "proxy-bearer-big")
    token = session_cookie_value(signed_in.cookies, server.session_cookie_name)
    bearer = {"Authorization": f"Bearer {token}"}
    runtime, _ = runtime_for(server.base_url)
    assert runtime.get_session_sync(bearer) is None
    assert runtime.strategy.health.consecutive_failures == 0  # type: ignore[union-attr]
    transport = RecordingTransport()
    runtime, _ = runtime_for(server.base_url, transport=transport, secure_cookie=False)
    session = runtime.get_session_sync(bearer)
    assert session is not None and session.user.id == "user-proxy-bearer-big"
    (header,) = transport.cookie_headers
    assert cookie_names(header) == {"authjs.session-token"}
    assert "authjs.session-token.1=" in header


@pytest.mark.parametrize("kind", ["plain", "secure"])
def test_sign_out_upstream_passes_auth_js_csrf_check(
    servers: dict[str, AuthJsServer],
    runtime_for: Any,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The csrf round trip is accepted by a real Auth.js (a failure would redirect
    to its error page and log a warning), also with `__Host-` csrf cookies."""
    server = servers[kind]
    signed_in = sign_in(server.base_url, f"proxy-signout-{kind}")
    runtime, transport = runtime_for(server.base_url, sign_out_upstream=True)
    cookie = cookie_header(signed_in.cookies)
    assert runtime.get_session_sync(cookie) is not None
    caplog.set_level(logging.DEBUG, "authsession")
    response: list[tuple[str, str]] = []
    runtime.sign_out_sync((cookie, response))
    assert "signed out at the proxy upstream" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert transport.calls == 3  # session, csrf, signout
    assert [parse_set_cookie(v).deletes for _, v in response] == [True]
    assert runtime.get_session_sync(cookie) is None
