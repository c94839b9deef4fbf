"""AuthSessionMiddleware around ASGI apps: raw ASGI, Starlette, websockets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket
from tests.conftest import SECRET

import authsession
from authsession import (
    AuthConfig,
    AuthRuntime,
    AuthRuntimeNotConfigured,
    AuthSessionMiddleware,
    ConfigurationError,
    get_server_session,
    get_server_session_sync,
    jwt,
)
from authsession._middleware import AsgiAuthSessionMiddleware, WsgiAuthSessionMiddleware

NAME = "authjs.session-token"
CLAIMS = {"name": "Ada", "email": "ada@example.com", "picture": "https://x/a.png", "sub": "1"}


def cookie(claims: dict[str, Any] = CLAIMS) -> str:
    return jwt.encode(claims, SECRET, NAME, 3600)


class Counting:
    """A session callback that counts resolutions (cache=False: one per resolve)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, session: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return session


def runtime(**options: Any) -> tuple[AuthRuntime, Counting]:
    counter = Counting()
    options.setdefault("cache", False)
    config = AuthConfig(secret=SECRET, callbacks={"session": counter}, **options)
    return AuthRuntime(config), counter


def starlette_app(routes: list[Any]) -> Starlette:
    return Starlette(routes=routes)


# -- protocol detection ------------------------------------------------------


def test_detects_asgi_and_wsgi_apps() -> None:
    async def asgi(scope: Any, receive: Any, send: Any) -> None: ...

    def wsgi(environ: Any, start_response: Any) -> list[bytes]:
        return []

    class AsgiClass:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    rt, _ = runtime()
    assert isinstance(AuthSessionMiddleware(asgi, rt), AsgiAuthSessionMiddleware)
    assert isinstance(AuthSessionMiddleware(AsgiClass(), rt), AsgiAuthSessionMiddleware)
    assert isinstance(AuthSessionMiddleware(Starlette(), rt), AsgiAuthSessionMiddleware)
    assert isinstance(AuthSessionMiddleware(wsgi, rt), WsgiAuthSessionMiddleware)
    # Both are AuthSessionMiddleware, and the explicit protocol wins.
    forced = AuthSessionMiddleware(wsgi, rt, protocol="asgi")
    assert isinstance(forced, AsgiAuthSessionMiddleware)
    assert isinstance(forced, AuthSessionMiddleware)
    assert forced.protocol == "asgi"


def test_ambiguous_or_bad_apps_are_configuration_errors() -> None:
    def three(a: Any, b: Any, c: Any) -> None: ...

    rt, _ = runtime()
    with pytest.raises(ConfigurationError, match="protocol="):
        AuthSessionMiddleware(three, rt)
    with pytest.raises(ConfigurationError, match="protocol must be one of"):
        AuthSessionMiddleware(three, rt, protocol="http")
    with pytest.raises(ConfigurationError, match="ASGI or WSGI app"):
        AuthSessionMiddleware(42, rt)
    with pytest.raises(TypeError, match="unknown option"):
        AuthSessionMiddleware(Starlette(), secret=SECRET, lazzy=True)
    with pytest.raises(ConfigurationError, match="not both"):
        AuthSessionMiddleware(Starlette(), rt, secret=SECRET)


# -- raw ASGI ----------------------------------------------------------------


def http_scope(cookie_header: str | None = None, **extra: Any) -> dict[str, Any]:
    headers = [(b"host", b"test")]
    if cookie_header is not None:
        headers.append((b"cookie", cookie_header.encode("latin-1")))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers,
    }
    scope.update(extra)
    return scope


async def call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def set_cookies(message: dict[str, Any]) -> list[str]:
    return [v.decode() for k, v in message.get("headers", []) if k.lower() == b"set-cookie"]


async def test_session_is_in_scope_before_the_app_runs() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen["scope"] = scope["authsession"]
        seen["current"] = await get_server_session()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    rt, counter = runtime()
    wrapped = AuthSessionMiddleware(app, rt)
    await call(wrapped, http_scope(f"{NAME}={cookie()}"))
    assert seen["scope"].user.name == "Ada"
    assert seen["current"] == seen["scope"]
    assert counter.calls == 1  # the no-argument read reused the middleware's result


async def test_no_cookie_and_bad_cookies_give_none_not_errors(caplog: Any) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["authsession"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    rt, _ = runtime()
    wrapped = AuthSessionMiddleware(app, rt)
    good = cookie()
    bad_headers = [
        None,
        "",
        f"{NAME}=",
        f"{NAME}=garbage",
        f"{NAME}={good[:-5]}",
        f"{NAME}={good[:40]}x{good[41:]}",
        f"{NAME}={'A' * 70_000}",
        "; ".join(f"{NAME}.{i}=abc" for i in range(40)),
        "\x00\xff;;==;",
    ]
    with caplog.at_level(logging.INFO, logger="authsession"):
        for header in bad_headers:
            sent = await call(wrapped, http_scope(header))
            assert sent[0]["status"] == 204
    assert seen == [None] * len(bad_headers)
    assert good not in caplog.text


async def test_lifespan_passes_through_untouched() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)

    wrapped = AuthSessionMiddleware(app, runtime()[0])
    await wrapped({"type": "lifespan", "asgi": {"version": "3.0"}}, None, None)
    assert scopes == [{"type": "lifespan", "asgi": {"version": "3.0"}}]


async def test_app_exceptions_are_not_swallowed() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("the app's own bug")

    wrapped = AuthSessionMiddleware(app, runtime()[0])
    with pytest.raises(ValueError, match="the app's own bug"):
        await call(wrapped, http_scope(f"{NAME}={cookie()}"))


async def test_lazy_resolves_only_when_asked_and_once() -> None:
    async def quiet(scope: Any, receive: Any, send: Any) -> None:
        assert "authsession" not in scope
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    rt, counter = runtime()
    await call(AuthSessionMiddleware(quiet, rt, lazy=True), http_scope(f"{NAME}={cookie()}"))
    assert counter.calls == 0

    seen: list[Any] = []

    async def reader(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await get_server_session())
        seen.append(await get_server_session(Request(scope)))
        seen.append(scope["authsession"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await call(AuthSessionMiddleware(reader, rt, lazy=True), http_scope(f"{NAME}={cookie()}"))
    assert counter.calls == 1
    assert [s.user.email for s in seen] == ["ada@example.com"] * 3


async def test_unconfigured_middleware_says_how_to_fix_it() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    wrapped = AuthSessionMiddleware(app)
    with pytest.raises(AuthRuntimeNotConfigured, match="configure_auth_runtime"):
        await call(wrapped, http_scope())
    # Configured after wrapping (at startup): picked up on the next request.
    authsession.configure_auth_runtime(AuthConfig(secret=SECRET))
    seen: list[Any] = []

    async def app2(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["authsession"])

    await call(AuthSessionMiddleware(app2), http_scope(f"{NAME}={cookie()}"))
    assert seen[0].user.name == "Ada"


async def test_config_options_build_the_runtime() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # No global runtime: the middleware's own is used by the API.
        seen.append(await get_server_session(Request(scope)))
        seen.append(authsession.get_token(Request(scope)))

    await call(AuthSessionMiddleware(app, secret=SECRET), http_scope(f"{NAME}={cookie()}"))
    assert seen[0].user.name == "Ada"
    assert seen[1]["sub"] == "1"


async def test_refreshed_cookie_is_added_and_app_headers_kept() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"x-app", b"1"), (b"set-cookie", b"theme=dark; Path=/")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    rt, _ = runtime(update_age=0)  # every read is due for a refresh
    sent = await call(AuthSessionMiddleware(app, rt), http_scope(f"{NAME}={cookie()}"))
    start = sent[0]
    assert (b"x-app", b"1") in start["headers"]
    cookies = set_cookies(start)
    assert cookies[0] == "theme=dark; Path=/"
    refreshed = [c for c in cookies if c.startswith(f"{NAME}=")]
    assert len(refreshed) == 1
    value = refreshed[0].split(";")[0].split("=", 1)[1]
    assert jwt.decode(value, SECRET, NAME)["name"] == "Ada"
    assert "HttpOnly" in refreshed[0] and "SameSite=Lax" in refreshed[0]


async def test_write_cookies_false_leaves_the_response_alone() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    rt, _ = runtime(update_age=0)
    sent = await call(
        AuthSessionMiddleware(app, rt, write_cookies=False), http_scope(f"{NAME}={cookie()}")
    )
    assert set_cookies(sent[0]) == []


async def test_app_cookie_decision_wins_over_refresh() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        header = f"{NAME}=; Path=/; Max-Age=0".encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"set-cookie", header)]}
        )
        await send({"type": "http.response.body", "body": b""})

    rt, _ = runtime(update_age=0)
    sent = await call(AuthSessionMiddleware(app, rt), http_scope(f"{NAME}={cookie()}"))
    assert set_cookies(sent[0]) == [f"{NAME}=; Path=/; Max-Age=0"]


async def test_sign_out_inside_the_app_clears_cookies_and_beats_refresh() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await rt.sign_out(None)
        seen.append(await get_server_session())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    rt, _ = runtime(update_age=0)
    sent = await call(AuthSessionMiddleware(app, rt), http_scope(f"{NAME}={cookie()}"))
    cookies = set_cookies(sent[0])
    assert len(cookies) == 1 and "Max-Age=0" in cookies[0] and cookies[0].startswith(f"{NAME}=;")
    assert seen == [None]


async def test_sign_in_inside_the_app_writes_the_cookie() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await rt.sign_in({"id": "7", "name": "Bo"})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    rt, _ = runtime()
    sent = await call(AuthSessionMiddleware(app, rt), http_scope())
    (written,) = set_cookies(sent[0])
    value = written.split(";")[0].split("=", 1)[1]
    assert jwt.decode(value, SECRET, NAME)["sub"] == "7"


async def test_streaming_responses_are_not_buffered() -> None:
    release = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"last"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    rt, _ = runtime(update_age=0)
    task = asyncio.create_task(
        AuthSessionMiddleware(app, rt)(http_scope(f"{NAME}={cookie()}"), receive, send)
    )
    for _ in range(50):
        await asyncio.sleep(0)
        if len(sent) == 2:
            break
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b"first"
    assert any(c.startswith(f"{NAME}=") for c in set_cookies(sent[0]))
    release.set()
    await task
    assert sent[-1]["body"] == b"last"


# -- Starlette ---------------------------------------------------------------


def test_starlette_async_and_threadpool_handlers() -> None:
    async def async_view(request: Request) -> Response:
        session = await get_server_session()
        assert session == request.scope["authsession"]
        return JSONResponse(session)

    def sync_view(request: Request) -> Response:
        # Starlette runs sync endpoints in a threadpool: the context var follows.
        session = get_server_session_sync()
        return JSONResponse(session)

    rt, counter = runtime()
    app = AuthSessionMiddleware(
        starlette_app([Route("/a", async_view), Route("/s", sync_view)]), rt
    )
    with TestClient(app) as client:
        client.cookies.set(NAME, cookie())
        a = client.get("/a")
        s = client.get("/s")
        client.cookies.clear()
        anonymous = client.get("/a")
    assert a.status_code == s.status_code == 200
    assert a.json()["user"] == {
        "name": "Ada",
        "email": "ada@example.com",
        "image": "https://x/a.png",
    }
    assert s.json()["user"] == a.json()["user"]
    assert anonymous.json() is None
    assert counter.calls == 2


def test_starlette_sign_out_route_with_explicit_response() -> None:
    async def sign_out(request: Request) -> Response:
        response = PlainTextResponse("bye")
        await rt.sign_out(request, response)
        return response

    rt, _ = runtime(update_age=0)
    app = AuthSessionMiddleware(starlette_app([Route("/out", sign_out)]), rt)
    with TestClient(app) as client:
        client.cookies.set(NAME, cookie())
        r = client.get("/out")
    headers = r.headers.get_list("set-cookie")
    # Exactly one Set-Cookie for the session: the app's clearing, not the refresh.
    assert len([h for h in headers if h.startswith(f"{NAME}=")]) == 1
    assert "Max-Age=0" in headers[0] or "max-age=0" in headers[0].lower()


def test_websocket_reads_handshake_cookies() -> None:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        session = await get_server_session(websocket)
        await websocket.send_json({"scope": websocket.scope["authsession"], "api": session})
        await websocket.close()

    rt, _ = runtime()
    app = AuthSessionMiddleware(starlette_app([WebSocketRoute("/ws", ws)]), rt)
    with TestClient(app) as client:
        client.cookies.set(NAME, cookie())
        with client.websocket_connect("/ws") as conn:
            data = conn.receive_json()
    assert data["scope"]["user"]["name"] == "Ada"
    assert data["api"] == data["scope"]
