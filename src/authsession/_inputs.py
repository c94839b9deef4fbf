"""Every input form ``get_server_session`` accepts, reduced to one view.

The view carries only what resolution needs: the session-token cookies, the
``Authorization`` header, where a resolved session may already sit (the
middleware's scope or environ) and where refreshed cookies go. Frameworks are
recognised by shape (``.scope``, ``.environ``, ``.META``, ``.headers``), never
by import, so importing authsession imports no framework.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ._cookies import _MARKER, parse_session_cookies, session_cookies_from_mapping
from ._responses import PENDING_KEY

SCOPE_KEY = "authsession"
# Where the middleware leaves its runtime, so get_server_session(request)
# inside the app uses the middleware's configuration without a global one.
RUNTIME_KEY = "authsession.runtime"
_EMPTY: dict[str, str] = {}


@dataclass(slots=True)
class RequestView:
    cookies: Mapping[str, str] = field(default_factory=dict)
    authorization: str | None = None
    # The ASGI scope or WSGI environ when the input came from one: a session
    # the middleware already resolved is read from there.
    store: MutableMapping[str, Any] | None = None
    response: Any = None
    https: bool | None = None

    def __repr__(self) -> str:
        # Views sit in request state, locals and traceback frames; cookie
        # values and the Authorization header are tokens, and the store (a
        # whole scope or environ) holds the raw Cookie header. Show the shape.
        cookies = {name: f"<{len(value)} chars>" for name, value in self.cookies.items()}
        authorization = self.authorization
        if authorization is not None:
            # "Bearer <1234 chars>": the scheme only when it looks like one.
            scheme, _, credentials = authorization.partition(" ")
            if credentials and scheme.isalpha() and len(scheme) <= 16:
                authorization = f"{scheme} <{len(credentials)} chars>"
            else:
                authorization = f"<{len(authorization)} chars>"
        store = None if self.store is None else type(self.store).__name__
        response = None if self.response is None else type(self.response).__name__
        return (
            f"RequestView(cookies={cookies!r}, authorization={authorization!r}, "
            f"store={store}, response={response}, https={self.https!r})"
        )


# Set by the middleware for the duration of a request, so that
# get_server_session() with no argument finds the current request: a view,
# or the scope or environ (parsed only when asked).
#
# The request sits in a one-item list that is emptied when the request ends,
# never in the variable directly: asyncio copies the current context into
# every callback and future scheduled during the request, and those copies
# outlive it. Holding the scope itself there kept every finished request's
# scope, headers and sink alive until the server's later callbacks ran;
# under concurrent load that alone made the garbage collector run ~15 times
# as often as for the bare server (measured with uvicorn).
Held: TypeAlias = "list[RequestView | MutableMapping[str, Any]]"
current_request: ContextVar[Held | None] = ContextVar("authsession_request", default=None)


def request_in_progress() -> RequestView | MutableMapping[str, Any] | None:
    """The request the middleware is handling in this context, if any."""
    held = current_request.get()
    return held[0] if held else None


class FinishedRequest(dict[str, Any]):
    """What a context copied during a request holds once it ended: the
    middleware's runtime and the session it read, nothing else."""

    __slots__ = ()


def leave_request(held: Held, token: Token[Held | None], runtime: object) -> None:
    """End of request: reset ``current_request`` and drop the request from
    every context copied during it.

    A task the app started keeps its copy of the context after the response.
    If ``runtime`` (the middleware ending the request) read the session, such
    a task still gets it from ``get_server_session()``: a ``FinishedRequest``
    replaces the scope, so the scope, headers and sink are freed. Otherwise
    (nothing was read, or another middleware's runtime answered last) there
    is nothing cheap and right to keep, and the task must pass the request.
    """
    current = held[0]
    store = current.store if isinstance(current, RequestView) else current
    if store is not None and SCOPE_KEY in store and store.get(RUNTIME_KEY) is runtime:
        finished = FinishedRequest()
        finished[RUNTIME_KEY] = runtime
        finished[SCOPE_KEY] = store[SCOPE_KEY]
        held[0] = finished
    else:
        held.clear()
    current_request.reset(token)


def view_from_scope(scope: MutableMapping[str, Any]) -> RequestView:
    cookie = authorization = None
    for name, value in scope.get("headers") or ():
        if name == b"cookie":
            # Several Cookie headers are allowed over HTTP/2; join them.
            text = value.decode("latin-1")
            cookie = text if cookie is None else f"{cookie}; {text}"
        elif name == b"authorization":
            authorization = value.decode("latin-1")
    return RequestView(
        cookies=parse_session_cookies(cookie) if cookie else _EMPTY,
        authorization=authorization,
        store=scope,
        response=scope.get(PENDING_KEY),
        https=scope.get("scheme") in ("https", "wss"),
    )


def view_from_environ(environ: MutableMapping[str, Any]) -> RequestView:
    cookie = environ.get("HTTP_COOKIE")
    if isinstance(cookie, bytes):
        cookie = cookie.decode("latin-1")
    return RequestView(
        cookies=parse_session_cookies(cookie) if cookie else _EMPTY,
        authorization=environ.get("HTTP_AUTHORIZATION"),
        store=environ,
        response=environ.get(PENDING_KEY),
        https=environ.get("wsgi.url_scheme") == "https",
    )


def _header(headers: Any, name: str) -> str | None:
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None:
        value = getter(name.title())
    if value is None and isinstance(headers, Mapping):
        for key, item in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = item
                break
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        value = (
            "; ".join(str(v) for v in value) if name == "cookie" else (value[0] if value else None)
        )
    return value if isinstance(value, str) else None


def view_from_headers(headers: Any) -> RequestView:
    cookie = _header(headers, "cookie")
    return RequestView(
        cookies=parse_session_cookies(cookie) if cookie else _EMPTY,
        authorization=_header(headers, "authorization"),
    )


def _is_scope(value: Mapping[str, Any]) -> bool:
    return value.get("type") in ("http", "websocket") and "headers" in value


def _is_environ(value: Mapping[str, Any]) -> bool:
    return "REQUEST_METHOD" in value or "wsgi.version" in value


def _looks_like_headers(value: Mapping[Any, Any]) -> bool:
    for key in value:
        if isinstance(key, str):
            if "session-token" in key:
                return False
            if key.lower() in ("cookie", "authorization"):
                return True
    return False


def _view_from_dict(source: dict[Any, Any]) -> RequestView:
    # Plain dicts are the commonest direct input (cookie mappings, scopes,
    # environs, headers): sorted out by their keys without ABC checks. A key
    # naming a session token only ever appears in a cookie mapping.
    # session_cookies_from_mapping, inlined (this is the hot path of direct
    # calls) and as a plain loop: a comprehension is a function call of its
    # own before Python 3.12.
    cookies: dict[str, str] = {}
    for name, value in source.items():
        if type(name) is str and _MARKER in name and type(value) is str:
            cookies[name] = value
    if cookies:
        return RequestView(cookies)
    if _is_scope(source):
        return view_from_scope(source)
    if _is_environ(source):
        return view_from_environ(source)
    if _looks_like_headers(source):
        return view_from_headers(source)
    return RequestView(cookies=cookies)


def to_view(source: Any) -> RequestView:
    """Turn any accepted input into a ``RequestView``; unknown shapes give an empty view."""
    kind = type(source)
    if kind is dict:
        return _view_from_dict(source)
    if kind is str:
        return RequestView(cookies=parse_session_cookies(source))
    if kind is RequestView:
        return source  # type: ignore[no-any-return]
    if source is None:
        current = request_in_progress()
        if current is None:
            return RequestView()
        if isinstance(current, RequestView):
            return current
        if type(current) is FinishedRequest:  # after the response: the session it read
            return RequestView(_EMPTY, store=current)
        return to_view(current)
    if isinstance(source, RequestView):
        return source
    if isinstance(source, tuple) and len(source) == 2:
        view = to_view(source[0])
        return RequestView(view.cookies, view.authorization, view.store, source[1], view.https)
    if isinstance(source, str):
        return RequestView(cookies=parse_session_cookies(source))
    if isinstance(source, bytes):
        return RequestView(cookies=parse_session_cookies(source.decode("latin-1")))
    if isinstance(source, MutableMapping) and _is_scope(source):
        return view_from_scope(source)
    if isinstance(source, MutableMapping) and _is_environ(source):
        return view_from_environ(source)
    # Framework objects before plain mappings: Starlette's Request is itself
    # a Mapping (over its scope) and must not be read as a cookie mapping.
    # Starlette / FastAPI requests and websockets carry their ASGI scope.
    scope = getattr(source, "scope", None)
    if isinstance(scope, MutableMapping) and _is_scope(scope):
        return view_from_scope(scope)
    # Werkzeug / Flask requests carry their WSGI environ.
    environ = getattr(source, "environ", None)
    if isinstance(environ, MutableMapping) and _is_environ(environ):
        return view_from_environ(environ)
    # Django's HttpRequest (WSGI or ASGI) keeps CGI-style headers in META;
    # the Django middleware stores its result there too.
    meta = getattr(source, "META", None)
    if isinstance(meta, MutableMapping):
        return view_from_environ(meta)
    if isinstance(source, Mapping):
        if _looks_like_headers(source):
            return view_from_headers(source)
        return RequestView(cookies=session_cookies_from_mapping(source))
    # Quart, aiohttp, httpx and most other request objects expose .headers.
    headers = getattr(source, "headers", None)
    if headers is not None:
        return view_from_headers(headers)
    return RequestView()
