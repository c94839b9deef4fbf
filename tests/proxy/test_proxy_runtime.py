"""Proxy mode end to end in one process: a runtime against a scripted upstream (MockTransport)."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

import authsession
from authsession import AuthRuntime

from .conftest import SESSION_URL, TOKEN, Upstream, ok, raw, session_body

COOKIE = f"authjs.session-token={TOKEN}"
MakeRuntime = Callable[..., AuthRuntime]


# --------------------------------------------------------------------------- #
# What is sent upstream
# --------------------------------------------------------------------------- #


def test_only_the_session_cookie_and_static_headers_go_upstream(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()
    runtime = make_runtime(upstream.transport(), headers={"X-Internal-Key": "k1"})
    header = (
        f"theme=dark; authjs.csrf-token=csrf%7Chash; {COOKIE}; "
        "authjs.callback-url=http%3A%2F%2Fx; tracking=abc; next-auth.session-token=old-v4"
    )
    session = runtime.get_session_sync({"cookie": header})
    assert session is not None and session.user.name == "alice"
    (request,) = upstream.requests
    assert str(request.url) == SESSION_URL
    assert request.method == "GET"
    assert request.headers["cookie"] == COOKIE
    assert request.headers["x-internal-key"] == "k1"
    assert request.headers["accept"] == "application/json"


def test_chunked_cookies_are_forwarded_as_chunks(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()
    runtime = make_runtime(upstream.transport())
    part0, part1 = "a" * 3936, "b" * 100
    runtime.get_session_sync(
        f"__Secure-authjs.session-token.1={part1}; __Secure-authjs.session-token.0={part0}"
    )
    assert upstream.cookie_headers() == [
        f"__Secure-authjs.session-token.0={part0}; __Secure-authjs.session-token.1={part1}"
    ]


def test_a_bearer_token_is_forwarded_as_the_session_cookie(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()
    runtime = make_runtime(upstream.transport(), cookie_name="authjs.session-token")
    session = runtime.get_session_sync({"Authorization": f"Bearer {TOKEN}"})
    assert session is not None
    assert upstream.cookie_headers() == [COOKIE]
    assert "authorization" not in upstream.requests[0].headers


def test_no_cookie_no_upstream_call(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()
    runtime = make_runtime(upstream.transport())
    assert runtime.get_session_sync("theme=dark") is None
    assert runtime.get_session_sync(None) is None
    assert upstream.calls == 0


def test_the_client_keeps_no_cookies_between_users(make_runtime: MakeRuntime) -> None:
    """httpx clients have a cookie jar; one user's cookie must never reach the next request."""
    upstream = Upstream(
        ok(set_cookie=("authjs.session-token=ISSUED-FOR-ALICE; Path=/", "other=1; Path=/"))
    )
    runtime = make_runtime(upstream.transport())
    runtime.get_session_sync("authjs.session-token=alice-token")
    runtime.get_session_sync("authjs.session-token=bob-token")
    asyncio.run(runtime.get_session("authjs.session-token=carol-token"))
    assert upstream.cookie_headers() == [
        "authjs.session-token=alice-token",
        "authjs.session-token=bob-token",
        "authjs.session-token=carol-token",
    ]


def test_redirects_are_not_followed(make_runtime: MakeRuntime) -> None:
    upstream = Upstream(
        httpx.Response(302, headers={"location": "https://elsewhere.example/api/auth/session"})
    )
    runtime = make_runtime(upstream.transport())
    assert runtime.get_session_sync(COOKIE) is None
    assert upstream.calls == 1


# --------------------------------------------------------------------------- #
# What comes back
# --------------------------------------------------------------------------- #


def test_the_session_is_the_upstreams_json(make_runtime: MakeRuntime) -> None:
    body = session_body("bob")
    body["user"]["id"] = "user-bob"
    body["accessToken"] = "custom-field"
    upstream = Upstream(ok(body))
    runtime = make_runtime(upstream.transport())
    session = runtime.get_session_sync(COOKIE)
    assert session == body
    assert isinstance(session, authsession.Session)
    assert session.user.id == "user-bob"


@pytest.mark.parametrize(
    "reply",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("server disconnected"),
        raw(500, b"oops"),
        raw(502, b"bad gateway"),
        raw(200, b"<html>login page</html>"),
        raw(200, b"[]", "application/json"),
        raw(200, b'{"user": {"name": "x"}}', "application/json"),
        raw(200, b'{"error": "Configuration"}', "application/json"),
        raw(200, b"{" * 10, "application/json"),
        raw(200, b'{"user": {}, "expires": "' + b"x" * (2 * 1024 * 1024) + b'"}'),
    ],
    ids=lambda r: type(r).__name__ if isinstance(r, BaseException) else str(r.status_code),
)
def test_upstream_failures_read_as_no_session_and_are_not_cached(
    make_runtime: MakeRuntime, reply: Any
) -> None:
    upstream = Upstream().push(reply)
    runtime = make_runtime(upstream.transport(), retries=0)
    assert runtime.get_session_sync(COOKIE) is None
    # Not cached: the next request asks again, and now gets the session.
    assert runtime.get_session_sync(COOKIE) is not None
    assert upstream.calls == 2


@pytest.mark.parametrize("body", [b"null", b"{}", b""])
def test_no_session_answers_are_cached_for_the_negative_ttl(
    make_runtime: MakeRuntime, body: bytes
) -> None:
    upstream = Upstream(raw(200, body, "application/json"))
    runtime = make_runtime(upstream.transport(), cache={"negative_ttl": 0.3})
    assert runtime.get_session_sync(COOKIE) is None
    assert runtime.get_session_sync(COOKIE) is None
    assert upstream.calls == 1
    time.sleep(0.35)
    assert runtime.get_session_sync(COOKIE) is None
    assert upstream.calls == 2


def test_sessions_are_cached_for_the_ttl(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()
    runtime = make_runtime(upstream.transport(), cache={"ttl": 0.3})
    for _ in range(5):
        assert runtime.get_session_sync(COOKIE) is not None
    assert upstream.calls == 1
    time.sleep(0.35)
    assert runtime.get_session_sync(COOKIE) is not None
    assert upstream.calls == 2
    assert runtime.cache_stats()["hits"] == 4


def test_a_cached_session_ends_at_its_expires(make_runtime: MakeRuntime) -> None:
    upstream = Upstream(ok(session_body(expires_in=0.3)))
    runtime = make_runtime(upstream.transport(), cache={"ttl": 60})
    assert runtime.get_session_sync(COOKIE) is not None
    assert runtime.get_session_sync(COOKIE) is not None
    assert upstream.calls == 1
    time.sleep(0.35)
    # Expired: not served from the cache; the upstream's answer (the same,
    # now past expiry) reads as no session.
    assert runtime.get_session_sync(COOKIE) is None
    assert upstream.calls == 2


# --------------------------------------------------------------------------- #
# Set-Cookie relay
# --------------------------------------------------------------------------- #

REISSUED = "authjs.session-token=REISSUED; Path=/; Expires=Thu, 01 Jan 2099 00:00:00 GMT; HttpOnly; SameSite=Lax"
UPSTREAM_SET_COOKIES = (
    REISSUED,
    "authjs.csrf-token=abc%7Cdef; Path=/; HttpOnly; SameSite=Lax",
    "authjs.callback-url=http%3A%2F%2Flocalhost; Path=/; HttpOnly; SameSite=Lax",
)


def test_the_reissued_session_cookie_is_relayed_and_nothing_else(
    make_runtime: MakeRuntime,
) -> None:
    upstream = Upstream(ok(set_cookie=UPSTREAM_SET_COOKIES))
    runtime = make_runtime(upstream.transport())
    headers: list[tuple[str, str]] = []
    assert runtime.get_session_sync((COOKIE, headers)) is not None
    assert [name for name, _ in headers] == ["set-cookie"]
    value = headers[0][1]
    assert value.startswith("authjs.session-token=REISSUED; Path=/")
    assert "HttpOnly" in value and "SameSite=Lax" in value and "2099" in value


def test_the_reissued_token_is_already_cached(make_runtime: MakeRuntime) -> None:
    """Auth.js re-issues the cookie on every call: without seeding, a browser
    that follows Set-Cookie would miss the cache on every request."""
    upstream = Upstream(ok(set_cookie=UPSTREAM_SET_COOKIES))
    runtime = make_runtime(upstream.transport())
    assert runtime.get_session_sync(COOKIE) is not None
    headers: list[tuple[str, str]] = []
    assert runtime.get_session_sync(("authjs.session-token=REISSUED", headers)) is not None
    assert upstream.calls == 1
    assert headers == []  # the cookie the client holds is already the current one


def test_forward_set_cookie_false_relays_nothing(make_runtime: MakeRuntime) -> None:
    upstream = Upstream(ok(set_cookie=UPSTREAM_SET_COOKIES))
    runtime = make_runtime(upstream.transport(), forward_set_cookie=False)
    headers: list[tuple[str, str]] = []
    assert runtime.get_session_sync((COOKIE, headers)) is not None
    assert headers == []


def test_a_cleared_cookie_is_relayed_with_no_session(make_runtime: MakeRuntime) -> None:
    # What Auth.js answers for a token it cannot decrypt: null, and a clearing cookie.
    upstream = Upstream(
        httpx.Response(
            200,
            headers=[
                ("content-type", "application/json"),
                ("set-cookie", "authjs.session-token=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
            ],
            content=b"null",
        )
    )
    runtime = make_runtime(upstream.transport())
    headers: list[tuple[str, str]] = []
    assert runtime.get_session_sync((COOKIE, headers)) is None
    (value,) = [v for _, v in headers]
    assert value.startswith("authjs.session-token=; Path=/; Max-Age=0")


def test_relayed_cookies_reach_a_starlette_response(make_runtime: MakeRuntime) -> None:
    from starlette.responses import Response

    upstream = Upstream(ok(set_cookie=(REISSUED.replace("Path=/", "Path=/; Domain=.example.com"),)))
    runtime = make_runtime(upstream.transport())
    response = Response()
    assert runtime.get_session_sync((COOKIE, response)) is not None
    (set_cookie,) = response.headers.getlist("set-cookie")
    assert set_cookie.startswith("authjs.session-token=REISSUED")
    assert "Domain=.example.com" in set_cookie


# --------------------------------------------------------------------------- #
# Retries and the breaker
# --------------------------------------------------------------------------- #


def test_connection_errors_are_retried(make_runtime: MakeRuntime) -> None:
    upstream = Upstream().push(httpx.ConnectError("refused"), httpx.ConnectError("refused"))
    runtime = make_runtime(upstream.transport(), retries=2)
    assert runtime.get_session_sync(COOKIE) is not None
    assert upstream.calls == 3


def test_retries_stop_at_the_limit(make_runtime: MakeRuntime) -> None:
    upstream = Upstream(httpx.ConnectError("refused"))
    runtime = make_runtime(upstream.transport(), retries=2)
    assert runtime.get_session_sync(COOKIE) is None
    assert upstream.calls == 3
    assert asyncio.run(runtime.get_session(COOKIE)) is None
    assert upstream.calls == 6


@pytest.mark.parametrize(
    "reply", [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), raw(503, b"")]
)
def test_timeouts_and_error_statuses_are_not_retried(make_runtime: MakeRuntime, reply: Any) -> None:
    upstream = Upstream().push(reply)
    runtime = make_runtime(upstream.transport(), retries=3)
    assert runtime.get_session_sync(COOKIE) is None
    assert upstream.calls == 1


def test_the_breaker_fails_fast_then_half_opens(
    make_runtime: MakeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "authsession")
    upstream = Upstream(raw(503, b"down"))
    runtime = make_runtime(
        upstream.transport(), retries=0, breaker_threshold=3, breaker_cooldown=0.3
    )
    for i in range(3):
        assert runtime.get_session_sync(f"authjs.session-token=t{i}") is None
    assert upstream.calls == 3
    started = time.perf_counter()
    for i in range(20):  # open: no upstream call at all
        assert runtime.get_session_sync(f"authjs.session-token=u{i}") is None
    assert upstream.calls == 3
    assert time.perf_counter() - started < 1.0
    time.sleep(0.35)
    upstream.default = ok()
    assert runtime.get_session_sync(COOKIE) is not None  # the half-open trial
    assert upstream.calls == 4
    assert runtime.get_session_sync("authjs.session-token=v") is not None
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "HTTP 503" in warnings[0].getMessage()
    assert "recovered" in caplog.text


def test_a_refused_request_is_no_session_for_that_cookie_not_an_outage(
    make_runtime: MakeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """A front proxy answering 400 to one client's oversized cookie must not
    open the breaker for everyone; the answer is cached like any "no session"."""
    caplog.set_level(logging.INFO, "authsession")
    oversized = "x" * 6000

    def upstream_behind_a_proxy(request: httpx.Request) -> httpx.Response:
        if len(request.headers.get("cookie", "")) > 4096:
            return raw(400, b"<html>400 Request Header Or Cookie Too Large</html>")
        return ok()

    upstream = Upstream(upstream_behind_a_proxy)
    runtime = make_runtime(upstream.transport(), retries=0, breaker_threshold=2)
    for i in range(5):
        assert runtime.get_session_sync(f"authjs.session-token={oversized}{i}") is None
    assert runtime.get_session_sync(f"authjs.session-token={oversized}0") is None
    assert upstream.calls == 5  # the repeat was answered by the negative cache
    assert runtime.strategy.health.stats()["state"] == "closed"  # type: ignore[union-attr]
    assert runtime.get_session_sync(COOKIE) is not None  # everyone else is still served
    # One warning (it could be a misconfiguration), then INFO per request.
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "HTTP 400" in warnings[0], warnings
    assert "failed" not in caplog.text
    assert oversized not in caplog.text


def test_a_refused_half_open_trial_neither_closes_nor_reopens_the_breaker(
    make_runtime: MakeRuntime,
) -> None:
    upstream = Upstream(raw(503, b"down"))
    runtime = make_runtime(
        upstream.transport(), retries=0, breaker_threshold=1, breaker_cooldown=0.2
    )
    health = runtime.strategy.health  # type: ignore[union-attr]
    assert runtime.get_session_sync("authjs.session-token=a") is None
    assert health.state == "open"
    time.sleep(0.25)
    upstream.push(raw(431, b""))  # the trial happens to carry a cookie the upstream refuses
    assert runtime.get_session_sync("authjs.session-token=b") is None
    assert health.state == "half-open"  # no verdict: the next request is the trial
    upstream.default = ok()
    assert runtime.get_session_sync(COOKIE) is not None
    assert health.state == "closed"


class Interrupt(BaseException):
    """Stands in for KeyboardInterrupt without alarming pytest."""


async def test_a_cancelled_half_open_trial_frees_the_slot_at_once(
    make_runtime: MakeRuntime,
) -> None:
    """The client of the trial request went away: the next request becomes the
    trial now, not when the garbage collector finds the abandoned resolution."""
    upstream = Upstream(httpx.ConnectError("down"))
    runtime = make_runtime(
        upstream.async_transport(), retries=0, breaker_threshold=1, breaker_cooldown=0.1
    )
    health = runtime.strategy.health  # type: ignore[union-attr]
    assert await runtime.get_session("authjs.session-token=a") is None
    assert health.state == "open"
    await asyncio.sleep(0.15)
    upstream.default, upstream.delay = ok(), 5.0
    gc.disable()  # what a busy process looks like between collections
    try:
        trial = asyncio.ensure_future(runtime.get_session("authjs.session-token=b"))
        await asyncio.sleep(0.05)
        trial.cancel()
        with pytest.raises(asyncio.CancelledError):
            await trial
        upstream.delay = 0.0
        assert await runtime.get_session(COOKIE) is not None  # admitted as the new trial
        assert health.state == "closed"
        del trial
    finally:
        gc.enable()


def test_an_interrupted_sync_trial_frees_the_slot_at_once(make_runtime: MakeRuntime) -> None:
    upstream = Upstream(httpx.ConnectError("down"))
    runtime = make_runtime(
        upstream.transport(), retries=0, breaker_threshold=1, breaker_cooldown=0.1
    )
    health = runtime.strategy.health  # type: ignore[union-attr]
    assert runtime.get_session_sync("authjs.session-token=a") is None
    time.sleep(0.15)
    upstream.push(Interrupt())  # Ctrl-C while the trial waits on the socket
    gc.disable()
    try:
        with pytest.raises(Interrupt):
            runtime.get_session_sync("authjs.session-token=b")
        upstream.default = ok()
        assert runtime.get_session_sync(COOKIE) is not None
        assert health.state == "closed"
    finally:
        gc.enable()


def test_logs_never_carry_the_token(
    make_runtime: MakeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream = Upstream(httpx.ConnectError("refused"))
    runtime = make_runtime(upstream.transport(), retries=1, breaker_threshold=2)
    for _ in range(4):
        runtime.get_session_sync(COOKIE)
    assert "failed" in caplog.text
    assert TOKEN not in caplog.text
    assert "token-value" not in caplog.text


def test_a_non_session_upstream_path_is_a_failure_not_a_signed_out_user(
    make_runtime: MakeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong base_path (an HTML page, a JSON error) warns; it is not cached as 'no session'."""
    caplog.set_level(logging.WARNING, "authsession")
    upstream = Upstream(raw(200, b"<!doctype html><title>Home</title>"))
    runtime = make_runtime(upstream.transport())
    assert runtime.get_session_sync(COOKIE) is None
    assert runtime.get_session_sync(COOKIE) is None
    assert upstream.calls == 2
    assert "not JSON" in caplog.text


# --------------------------------------------------------------------------- #
# Concurrency: one upstream call per token
# --------------------------------------------------------------------------- #


async def test_concurrent_tasks_share_one_upstream_call(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()
    upstream.delay = 0.05
    runtime = make_runtime(upstream.async_transport())
    results = await asyncio.gather(*(runtime.get_session(COOKIE) for _ in range(200)))
    assert all(r is not None and r.user.name == "alice" for r in results)
    assert upstream.calls == 1
    assert runtime.cache_stats()["coalesced"] >= 1
    await runtime.strategy.aclose()  # type: ignore[union-attr]


def test_concurrent_threads_share_one_upstream_call(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()
    upstream.delay = 0.05
    runtime = make_runtime(upstream.transport())
    barrier = threading.Barrier(32)

    def read() -> Any:
        barrier.wait()
        return runtime.get_session_sync(COOKIE)

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda _: read(), range(32)))
    assert all(r is not None for r in results)
    assert upstream.calls == 1


def test_sync_reads_run_on_the_calling_thread(make_runtime: MakeRuntime) -> None:
    threads: list[str] = []
    upstream = Upstream()

    def handler(request: httpx.Request) -> httpx.Response:
        threads.append(threading.current_thread().name)
        return upstream.handler(request)

    runtime = make_runtime(httpx.MockTransport(handler))
    runtime.get_session_sync(COOKIE)
    assert threads == [threading.current_thread().name]


def test_each_event_loop_gets_its_own_client(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()
    runtime = make_runtime(upstream.async_transport(), cache=False)
    clients = []

    async def read() -> Any:
        session = await runtime.get_session(COOKIE)
        clients.append(runtime.strategy.http.async_client())  # type: ignore[union-attr]
        return session

    for _ in range(3):  # three loops, one after another: none may reuse a dead loop's pool
        assert asyncio.run(read()) is not None
    assert len({id(c) for c in clients}) == 3
    assert upstream.calls == 3

    # Two loops alive at once, in two threads.
    def in_thread() -> Any:
        return asyncio.run(read())

    with ThreadPoolExecutor(2) as pool:
        assert all(r is not None for r in pool.map(lambda _: in_thread(), range(2)))


def test_a_sync_only_transport_serves_the_async_path(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()

    class SyncOnly(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return upstream.handler(request)

    runtime = make_runtime(SyncOnly())
    assert asyncio.run(runtime.get_session(COOKIE)) is not None
    assert runtime.get_session_sync("authjs.session-token=other") is not None
    assert upstream.calls == 2


# --------------------------------------------------------------------------- #
# The rest of the runtime in proxy mode
# --------------------------------------------------------------------------- #


def test_get_server_session_uses_the_configured_proxy_runtime() -> None:
    upstream = Upstream()
    authsession.configure_auth_proxy_runtime(
        "https://upstream.test", transport=upstream.transport()
    )
    session = authsession.get_server_session_sync(COOKIE)
    assert session is not None and session.user.email == "alice@example.com"
    assert asyncio.run(authsession.get_server_session(COOKIE)) == session
    assert upstream.calls == 1


def test_sign_in_and_update_are_refused_with_a_clear_error(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(Upstream().transport())
    with pytest.raises(NotImplementedError, match=r"proxy mode.*upstream\.test/api/auth/signin"):
        runtime.sign_in_sync({"id": "1", "name": "a"})
    with pytest.raises(NotImplementedError, match="proxy mode"):
        asyncio.run(runtime.sign_in({"id": "1"}))
    with pytest.raises(NotImplementedError, match="update_session"):
        runtime.update_session_sync(COOKIE, {"name": "b"})
    with pytest.raises(NotImplementedError, match="update_session"):
        asyncio.run(runtime.update_session(COOKIE, {"name": "b"}))


def test_sign_out_clears_the_cookie_and_the_cached_session(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()
    runtime = make_runtime(upstream.transport())
    assert runtime.get_session_sync(COOKIE) is not None
    headers: list[tuple[str, str]] = []
    runtime.sign_out_sync((COOKIE, headers))
    (value,) = [v for _, v in headers]
    assert value.startswith("authjs.session-token=; Path=/; Max-Age=0")
    # This process no longer serves the session for that token, even though
    # the upstream (a JWT it cannot revoke) would still vouch for it.
    assert runtime.get_session_sync(COOKIE) is None
    assert asyncio.run(runtime.get_session(COOKIE)) is None


def test_get_token_needs_a_secret_in_proxy_mode() -> None:
    authsession.configure_auth_proxy_runtime("https://upstream.test")
    with pytest.raises(authsession.ConfigurationError, match="secret"):
        authsession.get_token(COOKIE)
    assert authsession.get_token(COOKIE, raw=True) == TOKEN


async def test_the_middleware_serves_proxy_sessions(make_runtime: MakeRuntime) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    upstream = Upstream(ok(set_cookie=UPSTREAM_SET_COOKIES))
    upstream.delay = 0
    runtime = make_runtime(upstream.async_transport())

    async def me(request: Request) -> JSONResponse:
        session = await authsession.get_server_session(request)
        return JSONResponse(session)

    app = authsession.AuthSessionMiddleware(Starlette(routes=[Route("/me", me)]), runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        response = await client.get("/me", headers={"cookie": COOKIE})
    assert response.status_code == 200
    assert response.json()["user"]["name"] == "alice"
    assert response.headers.get_list("set-cookie") == [
        "authjs.session-token=REISSUED; Path=/; Expires=Thu, 01 Jan 2099 00:00:00 GMT; "
        "HttpOnly; SameSite=Lax"
    ]
    assert upstream.calls == 1
    await runtime.strategy.aclose()  # type: ignore[union-attr]


def test_close_releases_the_pool_and_the_runtime_still_reads(make_runtime: MakeRuntime) -> None:
    upstream = Upstream()
    runtime = make_runtime(upstream.transport(), cache=False)
    assert runtime.get_session_sync(COOKIE) is not None
    client = runtime.strategy.http.sync_client()  # type: ignore[union-attr]
    runtime.close()
    assert client.is_closed
    assert runtime.get_session_sync(COOKIE) is not None
    assert upstream.calls == 2


async def test_aclose_releases_this_loops_client_and_the_runtime_still_reads(
    make_runtime: MakeRuntime,
) -> None:
    upstream = Upstream()
    runtime = make_runtime(upstream.transport(), cache=False)
    assert await runtime.get_session(COOKIE) is not None
    client = runtime.strategy.http.async_client()  # type: ignore[union-attr]
    await runtime.aclose()
    assert client.is_closed
    assert await runtime.get_session(COOKIE) is not None  # a fresh client on demand
    assert upstream.calls == 2
    await runtime.aclose()


def test_a_proxy_config_passed_per_call_keeps_one_runtime_and_cache() -> None:
    upstream = Upstream()
    config = authsession.ProxyConfig(
        upstream_url="https://upstream.test", transport=upstream.transport()
    )
    for _ in range(3):
        session = authsession.get_server_session_sync(COOKIE, config)  # type: ignore[arg-type]
        assert session is not None
    assert upstream.calls == 1


async def test_the_middleware_accepts_a_proxy_config() -> None:
    upstream = Upstream()
    config = authsession.ProxyConfig(
        upstream_url="https://upstream.test", transport=upstream.async_transport()
    )
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["authsession"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = authsession.AuthSessionMiddleware(app, config)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        assert (await client.get("/", headers={"cookie": COOKIE})).status_code == 204
    assert seen[0].user.name == "alice"


# --------------------------------------------------------------------------- #
# sign_out_upstream
# --------------------------------------------------------------------------- #


def auth_js_like(signout: httpx.Response | BaseException) -> Upstream:
    """/session answers a session, /csrf a token and its cookie, /signout ``signout``."""
    upstream = Upstream()

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/csrf"):
            return httpx.Response(
                200,
                json={"csrfToken": "tok"},
                headers={"set-cookie": "authjs.csrf-token=tok%7Chash; Path=/; HttpOnly"},
            )
        if request.url.path.endswith("/signout"):
            if isinstance(signout, BaseException):
                raise signout
            return signout
        return ok()

    upstream.default = route
    return upstream


def test_sign_out_upstream_posts_auth_js_sign_out(make_runtime: MakeRuntime) -> None:
    upstream = auth_js_like(httpx.Response(302, headers={"location": "https://upstream.test"}))
    runtime = make_runtime(upstream.transport(), sign_out_upstream=True, retries=0)
    headers: list[tuple[str, str]] = []
    runtime.sign_out_sync((COOKIE, headers))
    csrf, signout = upstream.requests
    assert (csrf.method, csrf.url.path) == ("GET", "/api/auth/csrf")
    assert csrf.headers["cookie"] == COOKIE
    assert (signout.method, signout.url.path) == ("POST", "/api/auth/signout")
    assert signout.headers["cookie"] == f"{COOKIE}; authjs.csrf-token=tok%7Chash"
    assert signout.headers["content-type"] == "application/x-www-form-urlencoded"
    assert signout.content == b"csrfToken=tok&callbackUrl=https%3A%2F%2Fupstream.test"
    assert [v.split(";")[0] for _, v in headers] == ["authjs.session-token="]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(
            302, headers={"location": "https://upstream.test/api/auth/error?error=MissingCSRF"}
        ),
        httpx.Response(500),
        httpx.ConnectError("refused"),
    ],
)
def test_a_failed_upstream_sign_out_warns_and_still_signs_out_here(
    make_runtime: MakeRuntime, caplog: pytest.LogCaptureFixture, answer: Any
) -> None:
    caplog.set_level(logging.WARNING, "authsession")
    upstream = auth_js_like(answer)
    runtime = make_runtime(upstream.transport(), sign_out_upstream=True, retries=0)
    assert runtime.get_session_sync(COOKIE) is not None
    headers: list[tuple[str, str]] = []
    asyncio.run(runtime.sign_out((COOKIE, headers)))
    assert "sign-out at the proxy upstream" in caplog.text
    assert TOKEN not in caplog.text
    assert [v.split(";")[0] for _, v in headers] == ["authjs.session-token="]
    assert runtime.get_session_sync(COOKIE) is None


def test_without_sign_out_upstream_sign_out_makes_no_call(make_runtime: MakeRuntime) -> None:
    upstream = auth_js_like(httpx.Response(302))
    runtime = make_runtime(upstream.transport())
    runtime.sign_out_sync(COOKIE)
    asyncio.run(runtime.sign_out(COOKIE))
    assert upstream.calls == 0


def test_sign_out_skips_an_upstream_known_to_be_down(
    make_runtime: MakeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = auth_js_like(httpx.Response(302))
    upstream.default = raw(503, b"down")
    runtime = make_runtime(
        upstream.transport(), sign_out_upstream=True, retries=0, breaker_threshold=1
    )
    assert runtime.get_session_sync(COOKIE) is None  # opens the breaker
    caplog.set_level(logging.WARNING, "authsession")
    runtime.sign_out_sync(COOKIE)
    assert upstream.calls == 1
    assert "circuit open" in caplog.text
