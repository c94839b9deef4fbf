"""Starlette integration: middleware set-up, ``request.user``, route guards.

::

    from starlette.applications import Starlette
    from authsession.starlette import auth_middleware, require_session, requires_role

    app = Starlette(routes=[...], middleware=auth_middleware(secret="..."))

``auth_middleware`` returns ``AuthSessionMiddleware`` (the session at
``scope["authsession"]``) followed by Starlette's ``AuthenticationMiddleware``
with an ``AuthSessionBackend``, so ``request.user`` is a ``SessionUser`` (or
Starlette's ``UnauthenticatedUser``) and ``@requires`` works. The scopes of
a signed-in user are ``"authenticated"``, ``"role:<name>"`` for each role and
``"permission:<name>"`` for each permission (see ``authsession.guards`` for
where those come from); the prefixes keep a role and a permission of the
same name apart. Pass ``scopes=`` to name them differently.

``require_session``, ``requires_role`` and ``requires_permission`` decorate
endpoints (async, sync, ``HTTPEndpoint`` methods, websocket endpoints): a
browser asking for HTML is redirected to the sign-in page with
``callbackUrl``, an API client gets 401/403 JSON (``WWW-Authenticate`` on
401), and a websocket is closed with 1008 (policy violation). They need only
``AuthSessionMiddleware`` (or a configured runtime), not the authentication
middleware.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from . import _integration
from ._config import AuthConfig
from ._middleware import AsgiAuthSessionMiddleware
from ._runtime import AuthRuntime
from ._session import Session
from .guards import DEFAULT_SIGN_IN_URL, DenialResponse, permissions_of, roles_of

__all__ = [
    "AuthSessionBackend",
    "SessionUser",
    "auth_middleware",
    "default_scopes",
    "denial_to_response",
    "get_session",
    "install",
    "require_session",
    "requires_permission",
    "requires_role",
    "sign_in",
    "sign_out",
    "update_session",
]

F = TypeVar("F", bound=Callable[..., Any])
ScopesFor = Callable[[Session], Iterable[str]]
# RFC 6455 7.4.1: the endpoint refuses the connection because of its policy.
WS_POLICY_VIOLATION = 1008


# -- request.user --------------------------------------------------------------


def default_scopes(session: Session) -> list[str]:
    """``["authenticated", "role:<r>"..., "permission:<p>"...]`` for a session."""
    return [
        "authenticated",
        *sorted("role:" + role for role in roles_of(session)),
        *sorted("permission:" + name for name in permissions_of(session)),
    ]


class SessionUser(BaseUser):
    """``request.user`` for a signed-in request: the session's user, read-only.

    Keys of ``session.user`` read as attributes (``request.user.email``);
    ``request.user.session`` is the whole ``Session``.
    """

    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def user(self) -> Mapping[str, Any]:
        user = self.session.get("user")
        return user if isinstance(user, Mapping) else {}

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        user = self.user
        return str(user.get("name") or user.get("email") or "")

    @property
    def identity(self) -> str:
        # Auth.js puts no id in the session by default; the email is the
        # stable identifier it does expose.
        user = self.user
        return str(user.get("id") or user.get("email") or user.get("name") or "")

    @property
    def roles(self) -> frozenset[str]:
        return roles_of(self.session)

    @property
    def permissions(self) -> frozenset[str]:
        return permissions_of(self.session)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.user[name]
        except KeyError:
            raise AttributeError(
                f"the session's user has no {name!r}; use request.user.user.get({name!r})"
            ) from None

    def __repr__(self) -> str:
        return f"SessionUser(roles={sorted(self.roles)!r})"


class AuthSessionBackend(AuthenticationBackend):
    """A backend for Starlette's ``AuthenticationMiddleware`` reading the Auth.js session.

    Uses the session ``AuthSessionMiddleware`` resolved when it runs first
    (``auth_middleware`` orders them so); otherwise resolves it through the
    configured runtime.
    """

    def __init__(self, scopes: ScopesFor = default_scopes) -> None:
        self.scopes = scopes

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        session = await _integration.session_of(conn.scope)
        if not session:
            return None
        return AuthCredentials(list(self.scopes(session))), SessionUser(session)


# -- set-up --------------------------------------------------------------------


def auth_middleware(
    runtime_or_config: AuthRuntime | AuthConfig | None = None,
    *,
    populate_user: bool = True,
    scopes: ScopesFor = default_scopes,
    **options: Any,
) -> list[Middleware]:
    """The middleware list for ``Starlette(middleware=...)``.

    ``options`` are ``AuthSessionMiddleware``'s (``lazy``, ``write_cookies``,
    AuthConfig fields). With ``populate_user`` (the default) Starlette's
    ``AuthenticationMiddleware`` follows, which resolves the session on
    every request, so ``lazy=True`` then saves nothing.
    """
    # Starlette types middleware factories by their __call__ signature, which a
    # class whose __new__ picks a subclass does not spell out.
    factory: Any = AsgiAuthSessionMiddleware
    stack = [Middleware(factory, runtime_or_config, **options)]
    if populate_user:
        stack.append(Middleware(AuthenticationMiddleware, backend=AuthSessionBackend(scopes)))
    return stack


def install(
    app: Starlette,
    runtime_or_config: AuthRuntime | AuthConfig | None = None,
    *,
    populate_user: bool = True,
    scopes: ScopesFor = default_scopes,
    **options: Any,
) -> None:
    """``auth_middleware`` for an existing app (before it starts serving)."""
    # add_middleware puts each new middleware outermost: add the inner one first.
    for middleware in reversed(
        auth_middleware(runtime_or_config, populate_user=populate_user, scopes=scopes, **options)
    ):
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)


# -- reading and writing sessions ----------------------------------------------


async def get_session(conn: HTTPConnection) -> Session | None:
    """The request's session: the middleware's result, or resolved now."""
    return await _integration.session_of(conn.scope)


async def sign_in(
    conn: HTTPConnection,
    user: Mapping[str, Any],
    response: Any = None,
    *,
    account: Any = None,
    profile: Any = None,
    is_new_user: bool = False,
) -> str:
    """Start a session for ``user``; its cookie goes on ``response``.

    Without ``response`` the cookie goes on whatever response the app sends
    (this needs ``AuthSessionMiddleware``; without it, a ``RuntimeError``).
    """
    return await _integration.sign_in(
        conn.scope, user, response, account=account, profile=profile, is_new_user=is_new_user
    )


async def sign_out(conn: HTTPConnection, response: Any = None) -> None:
    """End the request's session and clear its cookies (``response`` as in ``sign_in``)."""
    await _integration.sign_out(conn.scope, response)


async def update_session(conn: HTTPConnection, data: Any, response: Any = None) -> Session | None:
    """Auth.js ``update(data)``: the session callbacks run with ``trigger="update"``."""
    return await _integration.update_session(conn.scope, data, response)


# -- guards --------------------------------------------------------------------


def denial_to_response(denied: DenialResponse) -> Response:
    """A ``guards.DenialResponse`` as a Starlette response."""
    headers = dict(denied.headers)
    if denied.json is not None:
        return JSONResponse(denied.json, denied.status, headers=headers)
    return Response(denied.text, denied.status, headers=headers)


def _connection(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> HTTPConnection:
    for value in (*args, *kwargs.values()):
        if isinstance(value, HTTPConnection):
            return value
    raise TypeError(
        "authsession's route guards decorate endpoints that take a Request or WebSocket"
    )


def _is_async(func: Any) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - the bound method itself
    )


def _guarded(func: F, guard: _integration.Guard) -> F:
    if _is_async(func):

        @functools.wraps(func)
        async def async_endpoint(*args: Any, **kwargs: Any) -> Any:
            conn = _connection(args, kwargs)
            denial = guard.check(await _integration.session_of(conn.scope))
            if denial is None:
                return await func(*args, **kwargs)
            if isinstance(conn, WebSocket):
                await conn.close(WS_POLICY_VIOLATION, denial.reason)
                return None
            return denial_to_response(guard.respond(denial, conn.scope))

        return async_endpoint  # type: ignore[return-value]

    # Sync endpoints stay sync so Starlette still runs them in its threadpool.
    @functools.wraps(func)
    def sync_endpoint(*args: Any, **kwargs: Any) -> Any:
        conn = _connection(args, kwargs)
        denial = guard.check(_integration.session_of_sync(conn.scope))
        if denial is None:
            return func(*args, **kwargs)
        return denial_to_response(guard.respond(denial, conn.scope))

    return sync_endpoint  # type: ignore[return-value]


def require_session(
    func: F | None = None,
    /,
    *,
    redirect_html: bool = True,
    sign_in_url: str = DEFAULT_SIGN_IN_URL,
) -> Any:
    """Admit only signed-in requests; ``@require_session`` or ``@require_session(...)``.

    ``redirect_html=False`` answers browsers with 401 too (no redirect);
    ``sign_in_url`` is the page to send them to (Auth.js's by default).
    """
    guard = _integration.Guard.build(redirect_html=redirect_html, sign_in_url=sign_in_url)
    if func is not None:
        return _guarded(func, guard)
    return functools.partial(_guarded, guard=guard)


def requires_role(
    *roles: str, redirect_html: bool = True, sign_in_url: str = DEFAULT_SIGN_IN_URL
) -> Callable[[F], F]:
    """Admit users holding *any* of ``roles`` (403 for others, 401 when signed out)."""
    guard = _integration.Guard.build(
        roles=roles, redirect_html=redirect_html, sign_in_url=sign_in_url, what="role"
    )
    return functools.partial(_guarded, guard=guard)


def requires_permission(
    *permissions: str, redirect_html: bool = True, sign_in_url: str = DEFAULT_SIGN_IN_URL
) -> Callable[[F], F]:
    """Admit users holding *all* of ``permissions`` (403 for others, 401 when signed out)."""
    guard = _integration.Guard.build(
        permissions=permissions,
        redirect_html=redirect_html,
        sign_in_url=sign_in_url,
        what="permission",
    )
    return functools.partial(_guarded, guard=guard)
