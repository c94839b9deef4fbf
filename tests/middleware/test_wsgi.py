"""AuthSessionMiddleware around WSGI apps: plain callables and Werkzeug."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import SECRET
from tests.middleware.test_asgi import NAME, cookie, runtime
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import ClosingIterator

from authsession import AuthSessionMiddleware, get_server_session_sync, jwt
from authsession._middleware import WsgiAuthSessionMiddleware


def test_environ_holds_the_session_before_the_app_runs() -> None:
    seen: list[Any] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(environ["authsession"])
        seen.append(get_server_session_sync())
        seen.append(get_server_session_sync(Request(environ)))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    rt, counter = runtime()
    wrapped = AuthSessionMiddleware(app, rt)
    assert isinstance(wrapped, WsgiAuthSessionMiddleware)
    client = Client(wrapped)
    client.set_cookie(NAME, cookie())
    assert client.get("/").status_code == 200
    assert [s.user.name for s in seen] == ["Ada"] * 3
    assert counter.calls == 1


@pytest.mark.filterwarnings("ignore:The 'authjs.session-token' cookie is too large")
def test_werkzeug_app_bad_cookies_are_anonymous_not_500() -> None:
    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        session = get_server_session_sync(request)
        return Response("anon" if session is None else session.user.name)

    wrapped = AuthSessionMiddleware(app, runtime()[0])
    good = cookie()
    for value in ("garbage", good[:-3], "A" * 70_000, good + "x"):
        client = Client(wrapped)
        client.set_cookie(NAME, value)
        r = client.get("/")
        assert (r.status_code, r.get_data(as_text=True)) == (200, "anon")
    client = Client(wrapped)
    client.set_cookie(NAME, good)
    assert client.get("/").get_data(as_text=True) == "Ada"


def test_refresh_cookie_is_appended_and_streaming_is_lazy() -> None:
    produced: list[str] = []

    def body() -> Iterator[bytes]:
        produced.append("first")
        yield b"first"
        produced.append("last")
        yield b"last"

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("X-App", "1"), ("Set-Cookie", "theme=dark; Path=/")])
        return body()

    rt, _ = runtime(update_age=0)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "wsgi.url_scheme": "http",
        "HTTP_COOKIE": f"{NAME}={cookie()}",
    }
    started: list[Any] = []
    result = AuthSessionMiddleware(app, rt)(environ, lambda s, h, e=None: started.append((s, h)))
    # The middleware returned the app's iterable untouched: nothing consumed yet.
    assert produced == []
    status, headers = started[0]
    assert status == "200 OK"
    assert ("X-App", "1") in headers
    cookies = [v for k, v in headers if k == "Set-Cookie"]
    assert cookies[0] == "theme=dark; Path=/"
    value = cookies[1].split(";")[0].split("=", 1)[1]
    assert jwt.decode(value, SECRET, NAME)["name"] == "Ada"
    assert list(result) == [b"first", b"last"]


def test_lazy_wsgi_resolves_on_demand_only() -> None:
    def quiet(environ: Any, start_response: Any) -> list[bytes]:
        start_response("204 No Content", [])
        return []

    def reader(environ: Any, start_response: Any) -> list[bytes]:
        a = get_server_session_sync()
        b = get_server_session_sync(Request(environ))
        start_response("200 OK", [])
        return [f"{a.user.name}{b.user.name}".encode()]

    rt, counter = runtime()
    client = Client(AuthSessionMiddleware(quiet, rt, lazy=True))
    client.set_cookie(NAME, cookie())
    client.get("/")
    assert counter.calls == 0
    client = Client(AuthSessionMiddleware(reader, rt, lazy=True))
    client.set_cookie(NAME, cookie())
    assert client.get("/").get_data() == b"AdaAda"
    assert counter.calls == 1


def test_sign_out_in_wsgi_view_clears_cookie() -> None:
    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        rt.sign_out_sync(request)
        return Response("bye")

    rt, _ = runtime(update_age=0)
    client = Client(AuthSessionMiddleware(app, rt))
    client.set_cookie(NAME, cookie())
    r = client.get("/")
    session_cookies = [h for h in r.headers.getlist("Set-Cookie") if h.startswith(f"{NAME}=")]
    assert len(session_cookies) == 1 and "Max-Age=0" in session_cookies[0]
    assert client.get_cookie(NAME) is None


def test_app_exceptions_propagate_and_context_resets() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        raise KeyError("app bug")

    wrapped = AuthSessionMiddleware(app, runtime()[0])
    with pytest.raises(KeyError):
        wrapped({"REQUEST_METHOD": "GET", "wsgi.url_scheme": "http"}, lambda *a: None)
    assert get_server_session_sync(None, runtime()[0]) is None


def test_threads_each_see_their_own_request() -> None:
    names = [f"user{i}" for i in range(8)]
    results: dict[str, Any] = {}

    def app(environ: Any, start_response: Any) -> list[bytes]:
        session = get_server_session_sync()
        results[environ["HTTP_X_EXPECT"]] = session.user.name if session else None
        start_response("200 OK", [])
        return [b""]

    wrapped = AuthSessionMiddleware(app, runtime(cache=True)[0])

    def worker(name: str) -> None:
        for _ in range(20):
            environ = {
                "REQUEST_METHOD": "GET",
                "wsgi.url_scheme": "http",
                "HTTP_X_EXPECT": name,
                "HTTP_COOKIE": f"{NAME}={cookie({'name': name})}",
            }
            wrapped(environ, lambda *a: None)
            assert results[name] == name

    threads = [threading.Thread(target=worker, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {n: n for n in names}


def test_a_body_the_caller_abandons_leaves_no_request_current() -> None:
    # Test clients pull the first item of a streamed body (to see the status)
    # and may never finish or close it. The caller's context must not keep
    # the request afterwards: a later no-argument read outside any request
    # would answer with this request's session. (Keeping the request current
    # in the caller's context from the app call to the body's end would be
    # cheaper; this is why each item makes it current and leaves again.)
    from authsession._inputs import request_in_progress

    seen: list[Any] = []

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        seen.append(get_server_session_sync())
        yield b"first"
        seen.append(get_server_session_sync())
        yield b"second"

    environ = {"REQUEST_METHOD": "GET", "wsgi.url_scheme": "http"}
    environ["HTTP_COOKIE"] = f"{NAME}={cookie()}"
    body = AuthSessionMiddleware(app, runtime()[0])(environ, lambda *a: None)
    assert request_in_progress() is None
    iterator = iter(body)
    assert next(iterator) == b"first"
    assert request_in_progress() is None  # between items: not current here
    assert seen[0] is not None and seen[0].user.name == "Ada"
    assert next(iterator) == b"second"
    assert seen[1] is not None and seen[1].user.name == "Ada"
    assert request_in_progress() is None


def test_a_body_runs_with_the_request_current_on_any_thread() -> None:
    # Items and the close see the request, wherever the server runs them, and
    # the thread's context holds nothing afterwards; a copy taken inside the
    # body still reads the session after the close; closing twice is harmless.
    import contextvars

    from authsession._inputs import request_in_progress

    seen: list[Any] = []
    copies: list[contextvars.Context] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            seen.append(get_server_session_sync())
            copies.append(contextvars.copy_context())
            yield b"first"
            seen.append(get_server_session_sync())
            yield b"second"

        def close(self) -> None:
            seen.append(get_server_session_sync())

    def app(environ: Any, start_response: Any) -> Body:
        start_response("200 OK", [])
        return Body()

    environ = {"REQUEST_METHOD": "GET", "wsgi.url_scheme": "http"}
    environ["HTTP_COOKIE"] = f"{NAME}={cookie()}"
    body = AuthSessionMiddleware(app, runtime()[0])(environ, lambda *a: None)
    items: list[bytes] = []
    outside: list[Any] = []

    def server() -> None:  # another thread iterates and closes, as some servers do
        items.extend(body)
        body.close()  # type: ignore[attr-defined]
        body.close()  # type: ignore[attr-defined]
        outside.append(request_in_progress())

    thread = threading.Thread(target=server)
    thread.start()
    thread.join()
    assert items == [b"first", b"second"]
    assert [s.user.name if s else None for s in seen] == ["Ada"] * 4  # two items, two closes
    assert outside == [None] and request_in_progress() is None
    late = copies[0].run(get_server_session_sync)  # a task started inside the body
    assert late is not None and late.user.name == "Ada"


def test_a_variable_set_during_the_call_is_reset_when_the_body_ends() -> None:
    # A middleware inside ours (OpenTelemetry's WSGI middleware works so, and
    # Flask 3.0's stream_with_context) sets a context variable during the app
    # call and resets it with its token once the body is done: the body must
    # run in the context that set it, or the reset raises and the value
    # stays in the server thread for its next request.
    import contextvars

    span: contextvars.ContextVar[str | None] = contextvars.ContextVar("span", default=None)
    before: list[str | None] = []

    def traced(app: Any) -> Any:
        def middleware(environ: Any, start_response: Any) -> Any:
            before.append(span.get())
            token = span.set(environ["PATH_INFO"])  # during the call ...
            return ClosingIterator(app(environ, start_response), lambda: span.reset(token))

        return middleware  # ... reset when the body is closed

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        session = get_server_session_sync()
        return [(session.user.name if session else "nobody").encode()]

    client = Client(AuthSessionMiddleware(traced(app), runtime()[0]))
    client.set_cookie(NAME, cookie())
    for path in ("/first", "/second"):
        response = client.get(path)
        assert response.get_data() == b"Ada"
        response.close()  # as a server closes the body
    assert before == [None, None] and span.get() is None
