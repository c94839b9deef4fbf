"""The middleware's cache-hit path: a raw Cookie header straight to a cached session.

It must give exactly what the full path (RequestView, parse, find, get_session)
gives, and hand every case it does not handle itself to that path.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from tests.conftest import SECRET
from tests.middleware.test_asgi import CLAIMS, NAME, call, http_scope

from authsession import (
    AuthConfig,
    AuthRuntime,
    AuthSessionMiddleware,
    get_server_session,
    get_server_session_sync,
    jwt,
)
from authsession._runtime import MISSING


def token(name: str = "Ada") -> str:
    return jwt.encode({**CLAIMS, "name": name}, SECRET, NAME, 3600)


def cached_runtime() -> AuthRuntime:
    return AuthRuntime(AuthConfig(secret=SECRET))


def test_with_the_cache_off_the_look_only_tells_anonymous_from_the_rest() -> None:
    rt = AuthRuntime(AuthConfig(secret=SECRET, cache=False))
    header = f"theme=dark; {NAME}={token()}"
    assert rt._session_if_cached("theme=dark") is None
    assert rt.get_session_sync(header) is not None
    assert rt._session_if_cached(header) is MISSING  # the full path resolves it every time
    assert rt.cache_stats()["hits"] == 0


def test_cached_session_answers_only_what_needs_no_io() -> None:
    rt = cached_runtime()
    value = token()
    header = f"theme=dark; {NAME}={value}; other=1"
    assert rt._session_if_cached(None) is None
    assert rt._session_if_cached("") is None
    assert rt._session_if_cached("theme=dark") is None  # no session cookie: anonymous
    assert rt._session_if_cached(header) is MISSING  # not resolved yet
    session = rt.get_session_sync(header)
    assert session is not None
    assert rt._session_if_cached(header) is session
    # Cases only the full rules decide: chunks, two session cookies, quoting,
    # escapes, a session cookie under a name this runtime does not read.
    assert rt._session_if_cached(f"{NAME}.0={value[:100]}; {NAME}.1={value[100:]}") is MISSING
    assert rt._session_if_cached(f"{NAME}={value}; __Secure-{NAME}={value}") is MISSING
    assert rt._session_if_cached(f'{NAME}="{value}"') is MISSING
    assert rt._session_if_cached(f"{NAME}={value[:10]}%41{value[10:]}") is MISSING
    assert rt._session_if_cached(f"my.session-token={value}") is MISSING


def test_a_look_that_misses_is_not_counted_twice() -> None:
    rt = cached_runtime()
    seen: list[Any] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(environ["authsession"])
        start_response("200 OK", [])
        return [b""]

    wrapped = AuthSessionMiddleware(app, rt)
    environ = {"REQUEST_METHOD": "GET", "HTTP_COOKIE": f"{NAME}={token()}"}
    wrapped(dict(environ), lambda *a: None)
    wrapped(dict(environ), lambda *a: None)
    stats = rt.cache_stats()
    assert (stats["misses"], stats["hits"]) == (1, 1)
    assert seen[0] is seen[1] and seen[0].user.name == "Ada"


async def test_bearer_header_takes_the_full_path_and_cookie_still_wins() -> None:
    rt = cached_runtime()
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["authsession"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = AuthSessionMiddleware(app, rt)
    ada, bob = token("Ada"), token("Bob")
    scope = http_scope(f"{NAME}={ada}")
    scope["headers"].append((b"authorization", f"Bearer {bob}".encode()))
    await call(wrapped, scope)
    # Bearer only: the full path reads it.
    bearer_only = http_scope(None)
    bearer_only["headers"].append((b"authorization", f"Bearer {bob}".encode()))
    await call(wrapped, bearer_only)
    assert [s.user.name for s in seen] == ["Ada", "Bob"]


async def test_several_cookie_headers_are_joined_by_the_full_path() -> None:
    rt = cached_runtime()
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await get_server_session())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = AuthSessionMiddleware(app, rt)
    value = token()
    scope = http_scope("theme=dark")
    scope["headers"].append((b"cookie", f"{NAME}={value}".encode()))
    await call(wrapped, scope)
    await call(wrapped, scope)  # now cached: still the full path, same answer
    assert [s.user.name for s in seen] == ["Ada", "Ada"]


@pytest.mark.parametrize("lazy", [False, True])
def test_wsgi_bearer_and_bytes_cookie_take_the_full_path(lazy: bool) -> None:
    rt = cached_runtime()
    seen: list[Any] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(get_server_session_sync())
        start_response("200 OK", [])
        return [b""]

    wrapped = AuthSessionMiddleware(app, rt, lazy=lazy)
    bob = token("Bob")
    wrapped({"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": f"Bearer {bob}"}, lambda *a: None)
    wrapped({"REQUEST_METHOD": "GET", "HTTP_COOKIE": f"{NAME}={bob}".encode()}, lambda *a: None)
    wrapped({"REQUEST_METHOD": "GET"}, lambda *a: None)
    assert [s.user.name if s else None for s in seen] == ["Bob", "Bob", None]


async def test_sign_out_inside_eager_app_builds_its_view_from_the_scope() -> None:
    # Eager mode makes the scope (not a prebuilt view) the current request:
    # a write inside the app must still find the request's cookies and sink.
    rt = cached_runtime()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await get_server_session()) is not None
        await rt.sign_out(None)
        assert (await get_server_session()) is None
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = AuthSessionMiddleware(app, rt)
    sent = await call(wrapped, http_scope(f"{NAME}={token()}"))
    cleared = [v.decode() for k, v in sent[0]["headers"] if k == b"set-cookie"]
    assert len(cleared) == 1 and cleared[0].startswith(f"{NAME}=;")


class _Scope(dict):  # type: ignore[type-arg]
    """A scope that can be weakly referenced, to see when it is freed."""


async def test_finished_request_is_not_kept_alive_by_copied_contexts() -> None:
    # asyncio copies the current context into every callback and future made
    # during a request; those copies outlive it. They must not keep the
    # request (scope, headers, cookie sink) alive: that retention made the
    # garbage collector run ~15x as often under load. A session read during
    # the request stays readable there (a task the app started, after the
    # response), through a two-key stand-in.
    import contextvars
    import gc
    import weakref

    from authsession._inputs import request_in_progress

    copies: list[contextvars.Context] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        copies.append(contextvars.copy_context())
        assert copies[-1].run(request_in_progress) is scope
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    for lazy in (False, True):
        wrapped = AuthSessionMiddleware(app, cached_runtime(), lazy=lazy)
        scope = _Scope(http_scope(f"{NAME}={token()}"))
        alive = weakref.ref(scope)
        gc.disable()
        try:
            await call(wrapped, scope)
            del scope
            assert alive() is None  # freed by reference counting alone
        finally:
            gc.enable()
        if lazy:  # never read during the request: nothing is kept
            assert copies[-1].run(request_in_progress) is None
        else:  # read during the request: a task started then still gets it
            late = copies[-1].run(get_server_session_sync)
            assert late is not None and late.user.name == "Ada"


def test_a_hit_counts_once_when_the_full_path_takes_over() -> None:
    # A cached entry with cookies to write (a due refresh) is answered by the
    # full path, which counts the hit; the middleware's look must not as well.
    from authsession._cache import Entry
    from authsession._cookies import CookieWrite

    rt = cached_runtime()
    value = token()
    session = rt.get_session_sync({NAME: value})
    assert session is not None
    key = hashlib.sha256(value.encode()).digest()
    write = CookieWrite(NAME, value, None, False)
    rt.cache.put(key, Entry(session, 1e12, (write,)), NAME)
    before = rt.cache_stats()["hits"]
    assert rt._session_if_cached(f"{NAME}={value}") is MISSING
    assert rt.get_session_sync({NAME: value}) is session
    assert rt.cache_stats()["hits"] == before + 1


async def test_after_the_response_every_reader_sees_the_session_it_read() -> None:
    # In a context copied during the request (a task the app started), the
    # no-argument reader, an explicit config and the runtime itself agree.
    import contextvars

    rt = cached_runtime()
    copies: list[contextvars.Context] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        copies.append(contextvars.copy_context())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await call(AuthSessionMiddleware(app, rt), http_scope(f"{NAME}={token()}"))
    late = copies[0]
    readers = [
        lambda: get_server_session_sync(),
        lambda: get_server_session_sync(config=rt),
        lambda: rt.get_session_sync(),
    ]
    assert [late.run(read).user.name for read in readers] == ["Ada"] * 3


async def test_nested_middlewares_keep_nothing_another_runtime_answered() -> None:
    # The inner middleware (another runtime) answers last in the shared scope;
    # the outer one must not hand that answer to tasks it started.
    import contextvars

    from authsession._inputs import request_in_progress

    outer_rt, inner_rt = cached_runtime(), AuthRuntime(AuthConfig(secret="another" * 6))
    copies: list[contextvars.Context] = []

    async def inner_app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    inner = AuthSessionMiddleware(inner_app, inner_rt)

    async def outer_app(scope: Any, receive: Any, send: Any) -> None:
        assert (await get_server_session()).user.name == "Ada"
        copies.append(contextvars.copy_context())
        await inner(scope, receive, send)

    await call(AuthSessionMiddleware(outer_app, outer_rt), http_scope(f"{NAME}={token()}"))
    assert copies[0].run(request_in_progress) is None


def test_cookie_sink_is_unsent_until_marked_and_carries_no_instance_dict():
    """One sink is made per request: marking it sent must not allocate an
    instance dict (a slot), and a sink nobody marked is treated as not sent
    by everything that reads it off the hot path."""
    from authsession._cookies import CookieWrite
    from authsession._responses import PendingCookies, apply_writes

    sink = PendingCookies()
    assert "unsent" not in repr(sink) and "sent=False" in repr(sink)
    write = CookieWrite(name=NAME, value="v", expires=None, secure=False, max_age=60)
    apply_writes(sink, [write])
    assert list(sink) == [NAME]  # collected, not refused as too late
    sink.sent = True
    assert sink.sent is True and "sent=True" in repr(sink)
    assert not hasattr(sink, "__dict__")
    with pytest.raises(AttributeError):
        sink.other = 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("early", ["http.response.early_hint", "http.response.debug"])
async def test_cookies_wait_for_the_start_message_past_earlier_messages(early: str) -> None:
    """Early hints (Hypercorn, uvicorn's HTTP/2) and Starlette's TestClient
    debug message come before http.response.start: a sign-in's cookie must
    still go on the start message (review: it was dropped when the first
    message of any kind marked the response started)."""
    rt = cached_runtime()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await rt.sign_in({"id": "1", "name": "Ada"})
        await send({"type": early, "links": [b"</app.css>; rel=preload"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = await call(AuthSessionMiddleware(app, rt), http_scope())
    assert sent[0]["type"] == early and "headers" not in sent[0]
    written = [v.decode() for k, v in sent[1]["headers"] if k == b"set-cookie"]
    assert len(written) == 1 and written[0].startswith(f"{NAME}=")


async def test_websocket_closed_before_accept_reports_later_writes(caplog: Any) -> None:
    """A websocket closed before accept has no response left to carry a
    cookie: a write after the close is reported, not queued in silence."""
    rt = cached_runtime()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "websocket.close", "code": 1008})
        await rt.sign_in({"id": "1", "name": "Ada"})

    scope = http_scope(type="websocket", scheme="ws")
    with caplog.at_level("WARNING", logger="authsession"):
        sent = await call(AuthSessionMiddleware(app, rt), scope)
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert "already started" in caplog.text and NAME in caplog.text
