"""Flask integration: an extension, ``current_session``, guards and cookie helpers.

::

    from authsession.flask import AuthSession, current_session, login_required

    app = Flask(__name__)
    AuthSession(app, secret=os.environ["AUTH_SECRET"])   # or AuthConfig / runtime

    @app.get("/api/me")
    @login_required
    def me():
        return dict(current_session)

``AuthSession.init_app`` wraps ``app.wsgi_app`` in ``AuthSessionMiddleware``,
so the session is resolved (or, with ``lazy=True``, resolvable) before Flask
sees the request, and refreshed or cleared cookies reach the response however
the view builds it. Everything here is sync: Flask views are, and the runtime's
sync API drives resolution. Access decisions come from ``authsession.guards``;
this module only turns them into Flask responses.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

from flask import Flask, current_app, has_app_context, has_request_context, request
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Response

from ._api import runtime_for
from ._config import AuthConfig
from ._errors import ConfigurationError
from ._inputs import RUNTIME_KEY, SCOPE_KEY
from ._middleware import AuthSessionMiddleware
from ._responses import PENDING_KEY
from ._runtime import MISSING, AuthRuntime
from ._session import Session
from .guards import (
    DEFAULT_SIGN_IN_URL,
    Denial,
    check,
    decorator_names,
    denial_response,
    wants_html,
)

__all__ = [
    "AuthSession",
    "current_session",
    "get_current_session",
    "get_session",
    "login_required",
    "permission_required",
    "role_required",
    "sign_in",
    "sign_out",
    "update_session",
]

F = TypeVar("F", bound=Callable[..., Any])

#: ``app.config`` key read by ``init_app`` when the extension was built without
#: a runtime or config: a mapping of ``AuthConfig`` fields, an ``AuthConfig``
#: or an ``AuthRuntime``.
CONFIG_KEY = "AUTHSESSION"
EXTENSION_KEY = "authsession"


class AuthSession:
    """The Flask extension: ``AuthSession(app)`` or ``AuthSession()`` + ``init_app(app)``.

    ``runtime_or_config`` is an ``AuthRuntime`` or ``AuthConfig``; ``AuthConfig``
    fields may be passed as keywords instead (``secret=...``). With neither,
    ``init_app`` reads ``app.config["AUTHSESSION"]`` and, failing that, the
    process runtime (``configure_auth_runtime``) is used, looked up per request.

    ``lazy=True`` resolves a request's session only when something asks for it
    (``current_session``, a guard); ``sign_in_url`` is where guards send a
    browser that is not signed in (Auth.js's page by default; the front end's
    own page when this service is not the one serving ``/api/auth``);
    ``write_cookies=False`` leaves refreshed / cleared cookies off responses.
    """

    def __init__(
        self,
        app: Flask | None = None,
        runtime_or_config: AuthRuntime | AuthConfig | None = None,
        *,
        lazy: bool = False,
        sign_in_url: str = DEFAULT_SIGN_IN_URL,
        write_cookies: bool = True,
        **options: Any,
    ) -> None:
        if options:
            if runtime_or_config is not None:
                raise ConfigurationError(
                    "pass either a runtime/config or AuthConfig options to AuthSession, not both"
                )
            # Built now: a bad setting fails at start-up, not at the first request.
            runtime_or_config = AuthConfig(**options)
        if runtime_or_config is not None and not isinstance(
            runtime_or_config, (AuthRuntime, AuthConfig)
        ):
            raise ConfigurationError(
                "AuthSession needs an AuthRuntime or AuthConfig, "
                f"got {type(runtime_or_config).__name__}"
            )
        self.source = runtime_or_config
        self.lazy = bool(lazy)
        self.sign_in_url = sign_in_url
        self.write_cookies = bool(write_cookies)
        self._middleware: WeakKeyDictionary[Flask, AuthSessionMiddleware] = WeakKeyDictionary()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Wrap ``app.wsgi_app``, register in ``app.extensions``, expose ``current_session``."""
        if EXTENSION_KEY in app.extensions:
            raise ConfigurationError(f"AuthSession is already set up for the app {app.name!r}")
        middleware = AuthSessionMiddleware(
            app.wsgi_app,
            self._source_for(app),
            protocol="wsgi",
            lazy=self.lazy,
            write_cookies=self.write_cookies,
        )
        app.wsgi_app = middleware  # type: ignore[method-assign,assignment]
        self._middleware[app] = middleware
        app.extensions[EXTENSION_KEY] = self
        # Templates read {% if current_session %}{{ current_session.user.name }}.
        app.context_processor(lambda: {"current_session": current_session})

    def _source_for(self, app: Flask) -> AuthRuntime | AuthConfig | None:
        if self.source is not None:
            return self.source
        setting = app.config.get(CONFIG_KEY)
        if setting is None or isinstance(setting, (AuthRuntime, AuthConfig)):
            return setting
        if isinstance(setting, Mapping):
            try:
                return AuthConfig(**setting)
            except TypeError as exc:  # an unknown key
                raise ConfigurationError(
                    f"app.config[{CONFIG_KEY!r}] holds something that is not an AuthConfig "
                    f"field: {exc}"
                ) from exc
        raise ConfigurationError(
            f"app.config[{CONFIG_KEY!r}] must be a dict of AuthConfig fields, an AuthConfig "
            f"or an AuthRuntime, got {type(setting).__name__}"
        )

    @property
    def runtime(self) -> AuthRuntime:
        """The runtime serving the current request (or app), else the configured one."""
        if has_request_context():
            runtime = request.environ.get(RUNTIME_KEY)
            if isinstance(runtime, AuthRuntime):
                return runtime
        if has_app_context():
            middleware = self._middleware.get(current_app._get_current_object())  # type: ignore[attr-defined]
            if middleware is not None:
                return middleware.runtime
        if isinstance(self.source, AuthRuntime):
            return self.source
        return runtime_for(self.source)

    def __repr__(self) -> str:
        return f"AuthSession(lazy={self.lazy}, sign_in_url={self.sign_in_url!r})"


def _extension() -> AuthSession:
    extension = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(extension, AuthSession):
        # Not a RuntimeError: current_session's truth test would swallow it
        # and quietly report "signed out".
        raise ConfigurationError(
            f"authsession is not set up for the Flask app {current_app.name!r}: "
            "call AuthSession(app) or AuthSession().init_app(app) in the app factory"
        )
    return extension


def get_current_session() -> Session | None:
    """The current request's ``Session``, or None when nobody is signed in.

    Resolved by the middleware before the view ran (or now, once, in lazy
    mode). Raises ``RuntimeError`` outside a request and ``ConfigurationError``
    when the app has no ``AuthSession``.
    """
    environ = request.environ  # RuntimeError outside a request context
    session = environ.get(SCOPE_KEY, MISSING)
    if session is not MISSING:
        return cast("Session | None", session)
    if PENDING_KEY not in environ:
        _extension()  # says what is missing
    # Lazy mode: resolve now. The runtime stores the result in the environ,
    # so the rest of the request reads it from there.
    return _extension().runtime.get_session_sync(environ)


#: The same as ``get_current_session`` (the name ``authsession.quart`` uses).
get_session = get_current_session

#: The current request's ``Session | None`` as a proxy: ``current_session.user.name``,
#: ``current_session["user"]``, ``dict(current_session)``. A proxy is never
#: ``None`` itself, so test it by truth (``if current_session:``, false when
#: signed out and outside a request), or call ``get_current_session()`` for
#: the real object when ``is None`` matters.
current_session: Session | None = cast(
    "Session | None", LocalProxy(get_current_session, unbound_message="no request")
)


# -- guards ------------------------------------------------------------------


def _denied(denial: Denial, sign_in_url: str | None) -> Response:
    plan = denial_response(
        denial,
        html=wants_html(request.headers.get("Accept")),
        callback_url=request.url,
        sign_in_url=sign_in_url or _extension().sign_in_url,
    )
    if plan.json is not None:
        return current_app.response_class(
            current_app.json.dumps(plan.json),
            status=plan.status,
            headers=plan.headers,
            mimetype="application/json",
        )
    return current_app.response_class(plan.text or "", status=plan.status, headers=plan.headers)


def _guard(
    view: F,
    sign_in_url: str | None,
    require_role: tuple[str, ...] | None = None,
    require_permission: tuple[str, ...] | None = None,
) -> F:
    def refusal() -> Response | None:
        denial = check(
            get_current_session(),
            require_role=require_role,
            require_permission=require_permission,
        )
        return None if denial is None else _denied(denial, sign_in_url)

    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_guarded(*args: Any, **kwargs: Any) -> Any:
            refused = refusal()
            return refused if refused is not None else await view(*args, **kwargs)

        return cast(F, async_guarded)

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        refused = refusal()
        return refused if refused is not None else view(*args, **kwargs)

    return cast(F, guarded)


def login_required(view: F | None = None, /, *, sign_in_url: str | None = None) -> Any:
    """Only signed-in users reach the view.

    Otherwise a browser navigation (``Accept: text/html``) is redirected (303)
    to the sign-in URL with ``callbackUrl`` set to the full request URL, and
    any other client gets ``401 {"error": "unauthorized", ...}``. Use as
    ``@login_required`` or ``@login_required(sign_in_url=...)``.
    """
    if view is None:
        return lambda inner: _guard(inner, sign_in_url)
    return _guard(view, sign_in_url)


def role_required(*roles: str, sign_in_url: str | None = None) -> Callable[[F], F]:
    """Signed-in users holding *any* of ``roles`` (``user.role`` / ``user.roles``).

    Signed out: as ``login_required``. Signed in without the role: 403.
    """
    required = decorator_names("role", roles)
    return lambda view: _guard(view, sign_in_url, require_role=required)


def permission_required(*permissions: str, sign_in_url: str | None = None) -> Callable[[F], F]:
    """Signed-in users holding *all* of ``permissions`` (``user.permissions``); else 403."""
    required = decorator_names("permission", permissions)
    return lambda view: _guard(view, sign_in_url, require_permission=required)


# -- writing sessions --------------------------------------------------------


def _target(response: Any) -> Any:
    """Where cookies go: the given response, else the middleware's pending cookies."""
    if response is not None:
        return response
    pending = request.environ.get(PENDING_KEY)
    if pending is None:
        _extension()
        raise ConfigurationError(
            "no response to write the session cookies to: pass response=, or call this "
            "inside a request that went through the AuthSession middleware"
        )
    return pending


def sign_in(
    user: Mapping[str, Any],
    response: Response | None = None,
    *,
    account: Any = None,
    profile: Any = None,
    is_new_user: bool = False,
) -> str:
    """Start a session for ``user`` (``id``, ``name``, ``email``, ``image``, …).

    The session cookie (chunked when large) goes on ``response``, or, when it
    is None, on whatever response this request ends up sending. Returns the
    new token. The callbacks run as at an Auth.js sign-in (``trigger="signIn"``).
    """
    return _extension().runtime.sign_in_sync(
        user,
        _target(response),
        request=request._get_current_object(),  # type: ignore[attr-defined]
        account=account,
        profile=profile,
        is_new_user=is_new_user,
    )


def sign_out(response: Response | None = None) -> None:
    """End the current session: forget it here and clear every cookie chunk.

    ``current_session`` is falsy for the rest of the request.
    """
    _extension().runtime.sign_out_sync(request._get_current_object(), _target(response))  # type: ignore[attr-defined]


def update_session(data: Any, response: Response | None = None) -> Session | None:
    """Auth.js ``update(data)``: re-run the callbacks with ``trigger="update"``.

    Returns the new session (also what ``current_session`` shows from now on),
    or None when there is no session to update.
    """
    return _extension().runtime.update_session_sync(
        request._get_current_object(),  # type: ignore[attr-defined]
        data,
        _target(response),
    )
