"""Quart integration: an extension, ``current_session`` and route guards.

::

    from quart import Quart
    from authsession.quart import AuthSession, current_session, login_required, role_required

    app = Quart(__name__)
    auth = AuthSession(app, secret="...")       # or AuthSession() ... auth.init_app(app)

    @app.get("/api/me")
    @login_required
    async def me():
        return dict(current_session)

``init_app`` wraps ``app.asgi_app`` with ``AuthSessionMiddleware``, so every
request (and websocket) has its session resolved before the view runs, and
refreshed or cleared cookies are added to whatever response the view
returns. ``current_session`` is a ``LocalProxy`` for the current request's
``Session | None``: test it with ``if current_session:`` (a proxy is never
``None`` itself) or read the real object with ``await get_session()``.

``login_required``, ``role_required`` and ``permission_required`` answer a
browser asking for HTML with a redirect to the sign-in page (with
``callbackUrl``) and an API client with 401/403 JSON (``WWW-Authenticate``
on 401); a websocket handshake is refused with that response.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from quart import Quart, Response, current_app, has_request_context, has_websocket_context
from quart import request as quart_request
from quart import websocket as quart_websocket
from werkzeug.local import LocalProxy

from . import _integration
from ._config import AuthConfig
from ._middleware import AuthSessionMiddleware
from ._runtime import AuthRuntime
from ._session import Session
from .guards import DEFAULT_SIGN_IN_URL, DenialResponse

__all__ = [
    "AuthSession",
    "current_session",
    "denial_to_response",
    "get_session",
    "login_required",
    "permission_required",
    "role_required",
]

EXTENSION_KEY = "authsession"
F = TypeVar("F", bound=Callable[..., Any])


class AuthSession:
    """The Quart extension: ``AuthSession(app, runtime_or_config, **options)``.

    ``runtime_or_config`` and ``options`` are ``AuthSessionMiddleware``'s
    (``lazy``, ``write_cookies`` and ``AuthConfig`` fields such as
    ``secret=``); without either, the runtime ``configure_auth_runtime``
    installs is used. ``sign_in_url`` and ``redirect_html`` are the defaults
    of the route guards in apps this extension is set up on.
    """

    def __init__(
        self,
        app: Quart | None = None,
        runtime_or_config: AuthRuntime | AuthConfig | None = None,
        *,
        lazy: bool = False,
        write_cookies: bool = True,
        sign_in_url: str = DEFAULT_SIGN_IN_URL,
        redirect_html: bool = True,
        **options: Any,
    ) -> None:
        if options:
            if runtime_or_config is not None:
                raise TypeError("pass either a runtime/config or AuthConfig options, not both")
            runtime_or_config = AuthConfig(**options)
        self.runtime_or_config = runtime_or_config
        self.lazy = lazy
        self.write_cookies = write_cookies
        self.sign_in_url = sign_in_url
        self.redirect_html = redirect_html
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        # Quart serves through app.asgi_app, which stays replaceable after
        # the app is built; wrapping it keeps the view layer untouched.
        app.asgi_app = AuthSessionMiddleware(  # type: ignore[method-assign,assignment]
            app.asgi_app,
            self.runtime_or_config,
            protocol="asgi",
            lazy=self.lazy,
            write_cookies=self.write_cookies,
        )
        app.extensions[EXTENSION_KEY] = self

    # -- the current request -------------------------------------------------

    @property
    def runtime(self) -> AuthRuntime:
        """The runtime serving the current request (or, outside one, the configured one)."""
        scope = _current_scope()
        if scope is not None:
            return _integration.runtime_of(scope)
        if isinstance(self.runtime_or_config, AuthRuntime):
            return self.runtime_or_config
        from ._api import runtime_for

        return runtime_for(self.runtime_or_config)

    async def sign_in(
        self,
        user: Mapping[str, Any],
        response: Any = None,
        *,
        account: Any = None,
        profile: Any = None,
        is_new_user: bool = False,
    ) -> str:
        """Start a session for ``user``; the cookie goes on ``response`` or the view's response."""
        return await _integration.sign_in(
            _require_scope(),
            user,
            response,
            account=account,
            profile=profile,
            is_new_user=is_new_user,
        )

    async def sign_out(self, response: Any = None) -> None:
        """End the current session and clear its cookies."""
        await _integration.sign_out(_require_scope(), response)

    async def update_session(self, data: Any, response: Any = None) -> Session | None:
        """Auth.js ``update(data)``: the callbacks run with ``trigger="update"``."""
        return await _integration.update_session(_require_scope(), data, response)


def _current_scope() -> Any:
    if has_request_context():
        return quart_request.scope
    if has_websocket_context():
        return quart_websocket.scope
    return None


def _require_scope() -> Any:
    scope = _current_scope()
    if scope is None:
        raise RuntimeError("authsession.quart needs a request or websocket context")
    return scope


async def get_session() -> Session | None:
    """The current request's ``Session | None`` (None outside a request)."""
    scope = _current_scope()
    return None if scope is None else await _integration.session_of(scope)


def _current_session() -> Session | None:
    scope = _current_scope()
    if scope is None:
        return None
    # Resolved already unless the extension runs lazily: then this reads
    # synchronously (a JWT decode; for database or proxy sessions in lazy
    # mode prefer ``await get_session()``, which does not block the loop).
    return _integration.session_of_sync(scope)


current_session: Any = LocalProxy(_current_session)
"""The current request's ``Session | None`` as a proxy (like Flask's ``current_user``)."""


# -- guards --------------------------------------------------------------------


def denial_to_response(denied: DenialResponse) -> Response:
    """A ``guards.DenialResponse`` as a Quart response."""
    headers = dict(denied.headers)
    if denied.json is not None:
        return Response(
            json.dumps(denied.json), denied.status, headers, content_type="application/json"
        )
    return Response(denied.text or "", denied.status, headers)


def _settings() -> AuthSession | None:
    extension = current_app.extensions.get(EXTENSION_KEY)
    return extension if isinstance(extension, AuthSession) else None


def _guarded(
    func: Callable[..., Any],
    roles: tuple[str, ...],
    permissions: tuple[str, ...],
    redirect_html: bool | None,
    sign_in_url: str | None,
) -> Callable[..., Awaitable[Any]]:
    # How a denial is answered comes from the extension of the app serving
    # the request, unless the decorator said.
    @functools.wraps(func)
    async def guarded_view(*args: Any, **kwargs: Any) -> Any:
        settings = _settings()
        if redirect_html is None:
            html = settings.redirect_html if settings else True
        else:
            html = redirect_html
        guard = _integration.Guard(
            roles,
            permissions,
            html,
            sign_in_url or (settings.sign_in_url if settings else DEFAULT_SIGN_IN_URL),
        )
        scope = _require_scope()
        denial = guard.check(await _integration.session_of(scope))
        if denial is not None:
            return denial_to_response(guard.respond(denial, scope))
        if inspect.iscoroutinefunction(func):
            return await func(*args, **kwargs)
        return await current_app.ensure_async(func)(*args, **kwargs)

    return guarded_view


def login_required(
    func: F | None = None,
    /,
    *,
    redirect_html: bool | None = None,
    sign_in_url: str | None = None,
) -> Any:
    """Admit only signed-in requests; ``@login_required`` or ``@login_required(...)``."""

    def decorate(view: F) -> F:
        return _guarded(view, (), (), redirect_html, sign_in_url)  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


def role_required(
    *roles: str, redirect_html: bool | None = None, sign_in_url: str | None = None
) -> Callable[[F], F]:
    """Admit users holding *any* of ``roles`` (403 for others, 401 when signed out)."""
    _integration.Guard.build(roles=roles, what="role")  # fail now, not per request

    def decorate(view: F) -> F:
        return _guarded(view, roles, (), redirect_html, sign_in_url)  # type: ignore[return-value]

    return decorate


def permission_required(
    *permissions: str, redirect_html: bool | None = None, sign_in_url: str | None = None
) -> Callable[[F], F]:
    """Admit users holding *all* of ``permissions`` (403 for others, 401 when signed out)."""
    _integration.Guard.build(permissions=permissions, what="permission")

    def decorate(view: F) -> F:
        return _guarded(view, (), permissions, redirect_html, sign_in_url)  # type: ignore[return-value]

    return decorate
