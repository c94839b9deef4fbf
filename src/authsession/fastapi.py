"""FastAPI integration: the session as a dependency, access rules, sign-in/out.

::

    from fastapi import Depends, FastAPI
    from authsession import AuthSessionMiddleware
    from authsession.fastapi import RequiredSession, SessionActionsDep, SessionDep, require_role

    app = FastAPI()
    app.add_middleware(AuthSessionMiddleware, secret="...")

    @app.get("/api/me")
    async def me(session: RequiredSession): ...          # 401 when signed out

    @app.get("/api/admin", dependencies=[Depends(require_role("admin"))])
    async def admin(): ...                                # 403 for other roles

``SessionDep`` reads the session the middleware resolved; without the
middleware it resolves it through the configured runtime (and refreshed
cookies go on FastAPI's response). It works in websocket routes too.

A denied HTTP request raises ``SessionDenied`` (an ``HTTPException``):
FastAPI answers ``{"detail": {"error": "unauthorized", "message": ...}}``
with 401 (and ``WWW-Authenticate``) or 403, or, for a browser asking for
HTML when ``redirect_html`` is on (the default), a 303 to the sign-in page
with ``callbackUrl``. A denied websocket is closed with 1008.
"""

# No ``from __future__ import annotations`` here: FastAPI reads these
# dependency signatures at runtime, and real objects need no name lookup.

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, HTTPException, WebSocketException
from fastapi.requests import HTTPConnection
from fastapi.responses import Response

from . import _integration
from ._responses import PENDING_KEY
from ._runtime import AuthRuntime
from ._session import Session
from .guards import DEFAULT_SIGN_IN_URL, Denial, DenialResponse

__all__ = [
    "RequiredSession",
    "SessionActions",
    "SessionActionsDep",
    "SessionDenied",
    "SessionDep",
    "get_session",
    "require_permission",
    "require_role",
    "require_session",
    "session_actions",
]

# RFC 6455 7.4.1: the endpoint refuses the connection because of its policy.
WS_POLICY_VIOLATION = 1008


async def get_session(connection: HTTPConnection, response: Response) -> Session | None:
    """The request's ``Session | None`` (the dependency behind ``SessionDep``)."""
    scope = connection.scope
    # Under the middleware refreshed cookies go through it; otherwise onto
    # the response FastAPI merges into the route's (when it returns data).
    return await _integration.session_of(scope, None if PENDING_KEY in scope else response)


SessionDep = Annotated[Session | None, Depends(get_session)]


class SessionDenied(HTTPException):
    """A route's session requirement was not met; FastAPI turns it into the response.

    ``denial`` says why (401 or 403 and a reason); ``plan`` is the
    framework-neutral response from ``authsession.guards``, for an app that
    installs its own handler for this exception.
    """

    def __init__(self, denial: Denial, plan: DenialResponse) -> None:
        headers = {k: v for k, v in plan.headers if k != "content-type"}
        detail = plan.json if plan.json is not None else plan.text
        super().__init__(plan.status, detail=detail, headers=headers or None)
        self.denial = denial
        self.plan = plan


SessionGuard = Callable[..., Awaitable[Session]]


def _guard(guard: _integration.Guard) -> SessionGuard:
    async def guarded_session(connection: HTTPConnection, session: SessionDep) -> Session:
        denial = guard.check(session)
        if denial is None:
            assert session is not None  # check() admits no anonymous request
            return session
        if connection.scope["type"] == "websocket":
            raise WebSocketException(WS_POLICY_VIOLATION, denial.reason)
        raise SessionDenied(denial, guard.respond(denial, connection.scope))

    return guarded_session


def require_session(
    *, redirect_html: bool = True, sign_in_url: str = DEFAULT_SIGN_IN_URL
) -> SessionGuard:
    """A dependency returning the ``Session``, or denying signed-out requests (401)."""
    return _guard(_integration.Guard.build(redirect_html=redirect_html, sign_in_url=sign_in_url))


def require_role(
    *roles: str, redirect_html: bool = True, sign_in_url: str = DEFAULT_SIGN_IN_URL
) -> SessionGuard:
    """A dependency admitting users holding *any* of ``roles`` (403 for others)."""
    return _guard(
        _integration.Guard.build(
            roles=roles, redirect_html=redirect_html, sign_in_url=sign_in_url, what="role"
        )
    )


def require_permission(
    *permissions: str, redirect_html: bool = True, sign_in_url: str = DEFAULT_SIGN_IN_URL
) -> SessionGuard:
    """A dependency admitting users holding *all* of ``permissions`` (403 for others)."""
    return _guard(
        _integration.Guard.build(
            permissions=permissions,
            redirect_html=redirect_html,
            sign_in_url=sign_in_url,
            what="permission",
        )
    )


RequiredSession = Annotated[Session, Depends(require_session())]


class SessionActions:
    """Sign in, sign out and update the session of the current request.

    Cookies go on the ``response`` passed to a method; else on whatever the
    route returns, through ``AuthSessionMiddleware``; else (no middleware)
    on FastAPI's own response, which FastAPI merges into the route's only
    when the route returns data rather than a ``Response`` -- a route that
    returns its own ``Response`` without the middleware must pass it.
    """

    def __init__(self, connection: HTTPConnection, response: Response) -> None:
        self.connection = connection
        self._fallback = response

    @property
    def runtime(self) -> AuthRuntime:
        return _integration.runtime_of(self.connection.scope)

    def _sink(self, response: Any) -> Any:
        if response is not None:
            return response
        return self.connection.scope.get(PENDING_KEY, self._fallback)

    async def sign_in(
        self,
        user: Mapping[str, Any],
        response: Any = None,
        *,
        account: Any = None,
        profile: Any = None,
        is_new_user: bool = False,
    ) -> str:
        """Start a session for ``user`` (a dict like Auth.js's); returns the token."""
        return await _integration.sign_in(
            self.connection.scope,
            user,
            self._sink(response),
            account=account,
            profile=profile,
            is_new_user=is_new_user,
        )

    async def sign_out(self, response: Any = None) -> None:
        """End the session and clear its cookies."""
        await _integration.sign_out(self.connection.scope, self._sink(response))

    async def update(self, data: Any, response: Any = None) -> Session | None:
        """Auth.js ``update(data)``: the callbacks run with ``trigger="update"``."""
        return await _integration.update_session(self.connection.scope, data, self._sink(response))


def session_actions(connection: HTTPConnection, response: Response) -> SessionActions:
    return SessionActions(connection, response)


SessionActionsDep = Annotated[SessionActions, Depends(session_actions)]
