"""``AuthSessionMiddleware``: one middleware for ASGI and WSGI apps.

Both shells do the same four things around the app, and nothing else:

1. read the request's cookies into a ``RequestView`` (``_inputs``),
2. resolve the session through the runtime (eagerly, or on first use with
   ``lazy=True``) and store it at ``scope["authsession"]`` /
   ``environ["authsession"]``,
3. make the request current for ``get_server_session()`` with no argument,
4. add the cookies resolution wants written (a sliding refresh, a sign-out's
   clearing) to the response headers when the response starts.

All decisions live in the runtime; the two shells differ only in how they
call it (await versus the sync bridge) and how headers reach the client.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import fields
from typing import Any, Literal, TypeAlias

from . import _api
from ._api import current_runtime, runtime_for
from ._config import AuthConfig
from ._errors import AuthRuntimeNotConfigured, ConfigurationError
from ._inputs import (
    RUNTIME_KEY,
    SCOPE_KEY,
    Held,
    current_request,
    leave_request,
    view_from_environ,
    view_from_scope,
)
from ._responses import PENDING_KEY, PendingCookies
from ._runtime import MISSING, AuthRuntime

log = logging.getLogger("authsession")

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
StartResponse: TypeAlias = Callable[..., Any]

_PROTOCOLS = ("auto", "asgi", "wsgi")
_CONFIG_FIELDS = frozenset(f.name for f in fields(AuthConfig))


def detect_protocol(app: Any) -> Literal["asgi", "wsgi"]:
    """ASGI if the app (or its ``__call__``) is a coroutine function, else WSGI.

    ASGI 3 apps are ``async def app(scope, receive, send)``: Starlette,
    FastAPI, Quart and Django's ``ASGIHandler`` all are. WSGI apps are plain
    ``app(environ, start_response)`` callables: Flask, Django's
    ``WSGIHandler``, Werkzeug, and any other plain callable. A sync callable
    taking exactly three arguments may be a hand-built ASGI app; we refuse to
    guess there.
    """
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(
        getattr(app, "__call__", None)  # noqa: B004 - we need the bound method itself
    ):
        return "asgi"
    if not callable(app):
        raise ConfigurationError(
            f"AuthSessionMiddleware needs an ASGI or WSGI app, got {type(app).__name__}"
        )
    try:
        params = [
            p
            for p in inspect.signature(app, follow_wrapped=False).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):  # builtins and C callables: assume WSGI
        params = []
    if len(params) == 3:
        raise ConfigurationError(
            f"{app!r} is a plain function of three arguments: it looks like an ASGI app "
            'but is not async, so we cannot tell; pass protocol="asgi" or '
            'protocol="wsgi" to AuthSessionMiddleware'
        )
    return "wsgi"


class AuthSessionMiddleware:
    """Resolve the session for every request of an ASGI or WSGI app.

    ``runtime_or_config`` is an ``AuthRuntime``, an ``AuthConfig``, or None
    for the runtime ``configure_auth_runtime`` (or
    ``configure_auth_proxy_runtime``) installs, looked up per request so the
    app may be wrapped before it is configured. ``AuthConfig`` fields may
    also be passed as keyword options (``secret=...``, ``strategy=...``).

    Options: ``protocol`` ("auto", "asgi", "wsgi"); ``lazy`` (resolve only
    when the app first asks, so routes that never read the session pay only
    for a dict lookup); ``write_cookies`` (False leaves the response alone:
    no refreshed or cleared cookies are added).

    Constructing it returns an ``AsgiAuthSessionMiddleware`` or a
    ``WsgiAuthSessionMiddleware`` (both subclasses), because servers decide
    how to call an app by inspecting its ``__call__``: it must be a
    coroutine function for ASGI and a plain function for WSGI.
    """

    app: Any
    lazy: bool
    write_cookies: bool
    protocol: str

    def __new__(
        cls,
        app: Any,
        runtime_or_config: AuthRuntime | AuthConfig | None = None,
        *,
        protocol: str = "auto",
        **options: Any,
    ) -> AuthSessionMiddleware:
        if cls is not AuthSessionMiddleware:
            return super().__new__(cls)
        if protocol not in _PROTOCOLS:
            raise ConfigurationError(
                f"protocol must be one of {', '.join(_PROTOCOLS)}, got {protocol!r}"
            )
        kind = detect_protocol(app) if protocol == "auto" else protocol
        sub = AsgiAuthSessionMiddleware if kind == "asgi" else WsgiAuthSessionMiddleware
        return super().__new__(sub)

    def __init__(
        self,
        app: Any,
        runtime_or_config: AuthRuntime | AuthConfig | None = None,
        *,
        protocol: str = "auto",
        lazy: bool = False,
        write_cookies: bool = True,
        **options: Any,
    ) -> None:
        unknown = set(options) - _CONFIG_FIELDS
        if unknown:
            raise TypeError(
                f"AuthSessionMiddleware got unknown option(s) {', '.join(sorted(unknown))}; "
                f"it takes protocol, lazy, write_cookies and AuthConfig fields"
            )
        if options:
            if runtime_or_config is not None:
                raise ConfigurationError(
                    "pass either a runtime/config or AuthConfig options to "
                    "AuthSessionMiddleware, not both"
                )
            runtime_or_config = AuthConfig(**options)
        self.app = app
        self.lazy = bool(lazy)
        self.write_cookies = bool(write_cookies)
        self.protocol = "asgi" if isinstance(self, AsgiAuthSessionMiddleware) else "wsgi"
        # A config is turned into its runtime once (shared with
        # get_server_session(..., config) calls, so the cache is one).
        self._runtime: AuthRuntime | None = (
            runtime_for(runtime_or_config) if runtime_or_config is not None else None
        )

    @property
    def runtime(self) -> AuthRuntime:
        runtime = self._runtime or current_runtime()
        if runtime is None:
            raise AuthRuntimeNotConfigured(
                "AuthSessionMiddleware has no runtime: pass an AuthConfig or AuthRuntime, "
                "or call configure_auth_runtime() / configure_auth_proxy_runtime() at startup"
            )
        return runtime

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r}, lazy={self.lazy})"


def _cookie_name(header: str) -> str:
    return header.split("=", 1)[0].strip()


_STARTS = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})


def _cookie_headers(
    pending: PendingCookies, headers: list[tuple[str, str]], private: bool
) -> list[tuple[str, str]]:
    """The headers that deliver the pending cookies to a response that
    already has ``headers``; both shells add them. Empties the sink.

    The app's own decision about a cookie wins over ours. A response that
    gains a cookie is marked ``Cache-Control: private`` (when ``private``):
    a session cookie must not be stored by a shared cache and handed to the
    next visitor; the app's own Cache-Control, when it set one, is left alone.
    """
    own = {_cookie_name(value) for name, value in headers if name.lower() == "set-cookie"}
    added = [("Set-Cookie", value) for name, value in pending.items() if name not in own]
    if added and private and not any(name.lower() == "cache-control" for name, _ in headers):
        added.append(("Cache-Control", "private"))
    pending.clear()
    return added


def _add_cookies(message: Message, pending: PendingCookies) -> None:
    """Put the pending cookies on the response's start message."""
    headers = list(message.get("headers") or ())
    text = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
    # A websocket handshake's answer is not a cacheable response.
    private = message["type"] != "websocket.accept"
    headers.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in _cookie_headers(pending, text, private)
    )
    message["headers"] = headers


def _sender(send: Send, pending: PendingCookies) -> Send:
    # A plain function returning the server's awaitable, not a coroutine of
    # its own: one frame less for every message of every response. Not kept
    # in the scope (the sink is), so no scope -> send -> scope cycle.
    def send_with_cookies(message: Message) -> Awaitable[None]:
        if not pending.sent:
            # Not simply the first message: early hints and Starlette's
            # http.response.debug may come before the start.
            kind = message["type"]
            if kind in _STARTS:
                pending.sent = True  # later writes cannot reach this client
                if pending:
                    _add_cookies(message, pending)
            elif kind == "websocket.close":  # closed before accept: nor can they
                pending.sent = True
        return send(message)

    return send_with_cookies


class AsgiAuthSessionMiddleware(AuthSessionMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":  # lifespan and the rest: untouched
            await self.app(scope, receive, send)
            return
        # The `runtime` property's lookup, without its two calls per request.
        runtime = self._runtime or _api._default or self.runtime  # fails loudly when unconfigured
        # Marking the request as ours and making its cookie sink are written
        # out in each shell rather than shared through a helper: this runs on
        # every request, and a lazy route that never reads the session pays
        # for little else (the call alone was a tenth of that price).
        if SCOPE_KEY in scope and scope.get(RUNTIME_KEY) is not runtime:
            # An outer middleware with another runtime resolved under its own
            # rules (a mounted sub-app shares the scope): not ours to reuse.
            del scope[SCOPE_KEY]
        scope[RUNTIME_KEY] = runtime
        if self.write_cookies:
            sink = PendingCookies()
            sink.sent = False
            scope[PENDING_KEY] = sink
            send = _sender(send, sink)
        elif PENDING_KEY in scope:
            # No sink: the runtime's helpers then say there is nowhere to
            # write, instead of succeeding with cookies nobody sends.
            del scope[PENDING_KEY]
        if not self.lazy and SCOPE_KEY not in scope:
            # The usual request: one Cookie header, no Authorization, a cached
            # session. Answered from the raw header without a RequestView.
            cookie = None
            session = MISSING
            for name, value in scope.get("headers") or ():
                if name == b"cookie":
                    if cookie is not None:  # several Cookie headers: the full path joins them
                        break
                    cookie = value
                elif name == b"authorization":
                    break  # the Bearer fallback is the full path's
            else:
                session = runtime._session_if_cached(
                    cookie.decode("latin-1") if cookie is not None else None
                )
            if session is MISSING:
                try:
                    session = await runtime.get_session(view_from_scope(scope))
                except Exception:  # never a 500 for a session we could not read
                    log.exception("authsession: session resolution failed; continuing signed out")
                    session = None
            scope[SCOPE_KEY] = session
        # The scope itself is the current request: a view is built only if a
        # later call (sign-out, a write) needs one.
        held: Held = [scope]
        token = current_request.set(held)
        try:
            await self.app(scope, receive, send)
        finally:
            if SCOPE_KEY in scope:  # copies of this context outlive the request
                leave_request(held, token, runtime)
            else:  # nothing of ours was read (lazy, or another runtime took over)
                held.clear()
                current_request.reset(token)


class WsgiAuthSessionMiddleware(AuthSessionMiddleware):
    def __call__(
        self, environ: MutableMapping[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        # As in the ASGI shell.
        runtime = self._runtime or _api._default or self.runtime
        if SCOPE_KEY in environ and environ.get(RUNTIME_KEY) is not runtime:
            del environ[SCOPE_KEY]
        environ[RUNTIME_KEY] = runtime
        if self.write_cookies:
            sink = PendingCookies()
            sink.sent = False
            environ[PENDING_KEY] = sink
            start_response = _starter(start_response, sink)
        elif PENDING_KEY in environ:
            del environ[PENDING_KEY]
        view: Any = environ  # as in the ASGI shell: no view unless one is needed
        if not self.lazy and SCOPE_KEY not in environ:
            cookie = environ.get("HTTP_COOKIE")
            session = MISSING
            if "HTTP_AUTHORIZATION" not in environ and (cookie is None or type(cookie) is str):
                session = runtime._session_if_cached(cookie)
            if session is MISSING:
                try:
                    session = runtime.get_session_sync(view_from_environ(environ))
                except Exception:
                    log.exception("authsession: session resolution failed; continuing signed out")
                    session = None
            environ[SCOPE_KEY] = session
        held: Held = [view]
        token = current_request.set(held)
        try:
            body = self.app(environ, start_response)
        finally:
            if SCOPE_KEY in environ:
                leave_request(held, token, runtime)
            else:
                held.clear()
                current_request.reset(token)
        if type(body) is list or type(body) is tuple:
            return body
        # A lazy body (a generator, Flask's responses) runs while the server
        # iterates it, after this call returned: keep the request current
        # there too, around each item, in the server's own context (a
        # middleware inside ours may set a variable during the call and reset
        # it when the body ends: that reset must run in the context that set
        # it). It is not buffered: one item at a time.
        return _InRequest(body, view, runtime)


def _starter(start_response: StartResponse, pending: PendingCookies) -> StartResponse:
    def start_with_cookies(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        if not pending.sent:
            pending.sent = True
            if pending:
                headers = [*headers, *_cookie_headers(pending, headers, True)]
        return start_response(status, headers, exc_info)

    return start_with_cookies


class _InRequest:
    """A WSGI body iterable whose items are produced with the request current."""

    __slots__ = ("_body", "_iterator", "_runtime", "_view")

    def __init__(self, body: Iterable[bytes], view: Any, runtime: AuthRuntime) -> None:
        self._body = body
        self._view = view
        self._runtime = runtime
        self._iterator: Any = None

    def __iter__(self) -> _InRequest:
        return self

    def __next__(self) -> bytes:
        held: Held = [self._view]
        token = current_request.set(held)
        try:
            iterator = self._iterator
            if iterator is None:
                iterator = self._iterator = iter(self._body)
            return next(iterator)  # type: ignore[no-any-return]
        finally:
            leave_request(held, token, self._runtime)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            held: Held = [self._view]
            token = current_request.set(held)
            try:
                close()
            finally:
                leave_request(held, token, self._runtime)
