"""Regressions found in review: sign-out/sign-in across cookie variants and
chunkings, per-runtime stored sessions, writes after the response started,
write_cookies=False, WSGI streaming bodies, update logging."""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from tests.conftest import SECRET
from werkzeug.test import Client

from authsession import (
    AuthConfig,
    AuthRuntime,
    AuthSessionMiddleware,
    get_server_session,
    get_server_session_sync,
)
from authsession.jwt import encode
from authsession.starlette import auth_middleware, sign_in

NAME = "authjs.session-token"
SECURE = "__Secure-" + NAME


def names(sink: list[tuple[str, str]]) -> list[str]:
    return [header.split("=", 1)[0] for _, header in sink]


def browser_after(cookies: dict[str, str], set_cookies: list[str]) -> dict[str, str]:
    """The cookies a browser holds after applying these Set-Cookie headers."""
    jar = dict(cookies)
    for header in set_cookies:
        parsed = SimpleCookie()
        parsed.load(header)
        for key, morsel in parsed.items():
            if morsel.value and morsel["max-age"] != "0":
                jar[key] = morsel.value
            else:
                jar.pop(key, None)
    return jar


def test_sign_out_ends_every_session_variant_the_request_carries() -> None:
    runtime = AuthRuntime(AuthConfig(secret=SECRET))
    alice = encode({"name": "alice"}, SECRET, SECURE)
    bob = encode({"name": "bob"}, SECRET, NAME)
    sink: list[tuple[str, str]] = []
    runtime.sign_out_sync(f"{SECURE}={alice}; {NAME}={bob}", sink)
    assert sorted(names(sink)) == sorted([SECURE, NAME])
    # Both tokens are refused from now on, even if a copy survives somewhere.
    assert runtime.get_session_sync({NAME: bob}) is None
    assert runtime.get_session_sync({SECURE: alice}) is None


def test_sign_in_clears_a_session_under_the_other_variant() -> None:
    runtime = AuthRuntime(AuthConfig(secret=SECRET, cache=False))
    alice = encode({"name": "alice"}, SECRET, SECURE)
    request = {
        "type": "http",
        "scheme": "http",  # behind a TLS proxy without forwarded headers
        "headers": [(b"cookie", f"{SECURE}={alice}".encode())],
    }
    sink: list[tuple[str, str]] = []
    runtime.sign_in_sync({"id": "2", "name": "carol"}, sink, request=request)
    jar = browser_after({SECURE: alice}, [h for _, h in sink])
    session = runtime.get_session_sync(jar)
    assert session is not None and session.user.name == "carol"


def test_sign_out_under_the_middleware_beats_a_refresh_that_changed_chunking() -> None:
    def shrink(token: dict[str, Any]) -> dict[str, Any]:
        token.pop("scratch", None)
        return token

    config = AuthConfig(secret=SECRET, update_age=0, callbacks={"jwt": shrink})

    async def logout(request: Request) -> Response:
        await runtime_of(request).sign_out(request)
        return PlainTextResponse("bye")

    def runtime_of(request: Request) -> AuthRuntime:
        return request.scope["authsession.runtime"]  # type: ignore[no-any-return]

    app = AuthSessionMiddleware(
        Starlette(routes=[Route("/logout", logout, methods=["POST"])]), config
    )
    big = encode({"name": "alice", "scratch": "x" * 4000}, SECRET, NAME)
    cookies = {f"{NAME}.0": big[:3936], f"{NAME}.1": big[3936:]}
    client = TestClient(app)
    for key, value in cookies.items():
        client.cookies.set(key, value)
    response = client.post("/logout")
    jar = browser_after(cookies, response.headers.get_list("set-cookie"))
    assert jar == {}
    assert get_server_session_sync({NAME: big}, config) is None


async def test_another_config_does_not_reuse_the_middleware_session() -> None:
    a = AuthConfig(secret="secret-A" * 4)
    b = AuthConfig(secret="secret-B" * 4, cookie_name="admin.session-token")
    seen: list[Any] = []

    async def admin(request: Request) -> Response:
        seen.append(await get_server_session(request, b))
        seen.append(await get_server_session(request))
        return JSONResponse(None)

    for lazy in (False, True):
        seen.clear()
        app = AuthSessionMiddleware(Starlette(routes=[Route("/admin", admin)]), a, lazy=lazy)
        client = TestClient(app)
        client.cookies.set(NAME, encode({"name": "alice"}, "secret-A" * 4, NAME))
        client.get("/admin")
        assert seen[0] is None  # B's rules: no admin cookie, no session
        assert seen[1] is not None and seen[1].user.name == "alice"


def test_a_cookie_written_after_the_response_started_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = AuthRuntime(AuthConfig(secret=SECRET))

    async def stream(request: Request) -> Response:
        async def body() -> Any:
            yield b"first "
            await runtime.sign_out(None)  # too late for a Set-Cookie
            yield b"done"

        return StreamingResponse(body())

    app = AuthSessionMiddleware(Starlette(routes=[Route("/s", stream)]), runtime)
    client = TestClient(app)
    token = encode({"name": "alice"}, SECRET, NAME)
    client.cookies.set(NAME, token)
    with caplog.at_level(logging.WARNING, logger="authsession"):
        response = client.get("/s")
    assert response.text == "first done"
    assert "already started" in caplog.text and token not in caplog.text
    # The revocation itself happened: the token is refused from now on.
    assert runtime.get_session_sync({NAME: token}) is None


def test_write_cookies_false_makes_cookie_helpers_say_so() -> None:
    async def login(request: Request) -> Response:
        await sign_in(request, {"id": "1", "name": "alice"})
        return JSONResponse(None)

    app = Starlette(
        routes=[Route("/login", login, methods=["POST"])],
        middleware=auth_middleware(AuthConfig(secret=SECRET), write_cookies=False),
    )
    with pytest.raises(RuntimeError, match="no response to write"):
        TestClient(app).post("/login")


def test_wsgi_streamed_body_runs_with_the_request_current() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        session = get_server_session_sync()  # runs while the server iterates the body
        yield (session.user.name if session else "nobody").encode()

    wrapped = AuthSessionMiddleware(app, AuthConfig(secret=SECRET), protocol="wsgi")
    client = Client(wrapped)
    client.set_cookie(NAME, encode({"name": "alice"}, SECRET, NAME))
    assert client.get("/").get_data(as_text=True) == "alice"


def test_sign_in_inside_a_request_updates_its_session() -> None:
    runtime = AuthRuntime(AuthConfig(secret=SECRET))
    seen: list[Any] = []

    async def switch(request: Request) -> Response:
        await runtime.sign_in({"id": "2", "name": "bob"}, request=request)
        seen.append(await get_server_session(request))
        return JSONResponse(None)

    app = AuthSessionMiddleware(Starlette(routes=[Route("/switch", switch)]), runtime)
    client = TestClient(app)
    client.cookies.set(NAME, encode({"name": "alice"}, SECRET, NAME))
    client.get("/switch")
    assert seen[0] is not None and seen[0].user.name == "bob"


def test_update_with_a_bad_cookie_logs_info_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = AuthRuntime(AuthConfig(secret=SECRET))
    with caplog.at_level(logging.INFO, logger="authsession"):
        assert runtime.update_session_sync(f"{NAME}=garbage", {"name": "x"}) is None
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert caplog.records[0].exc_info is None


@pytest.mark.parametrize("app_cache_control", [None, "public, max-age=60"])
def test_added_session_cookie_marks_the_response_private(app_cache_control: str | None) -> None:
    async def page(request: Request) -> Response:
        headers = {"cache-control": app_cache_control} if app_cache_control else {}
        return PlainTextResponse("hi", headers=headers)

    def wsgi_page(environ: Any, start_response: Any) -> list[bytes]:
        headers = [("Cache-Control", app_cache_control)] if app_cache_control else []
        start_response("200 OK", headers)
        return [b"hi"]

    config = AuthConfig(secret=SECRET, update_age=0)  # every read refreshes the cookie
    token = encode({"name": "alice"}, SECRET, NAME)
    client = TestClient(AuthSessionMiddleware(Starlette(routes=[Route("/", page)]), config))
    client.cookies.set(NAME, token)
    asgi = client.get("/")
    wsgi_client = Client(AuthSessionMiddleware(wsgi_page, config))
    wsgi_client.set_cookie(NAME, token)
    wsgi = wsgi_client.get("/")
    set_cookies = [asgi.headers.get_list("set-cookie"), wsgi.headers.getlist("Set-Cookie")]
    for response, cookies in zip((asgi, wsgi), set_cookies, strict=True):
        assert any(h.startswith(f"{NAME}=") for h in cookies)
        assert response.headers["cache-control"] == (app_cache_control or "private")
