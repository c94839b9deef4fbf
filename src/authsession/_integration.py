"""What the ASGI framework integrations (Starlette, FastAPI, Quart) share.

Every one of them has the request's ASGI scope in hand, so the session
lookup, the access decision and the cookie writes are written once here,
against the scope; the integration modules only translate the outcome into
their framework's responses and exceptions. Nothing here imports a framework
beyond Starlette's URL type (Starlette is a core dependency; Quart scopes
are plain ASGI scopes too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import URL

from ._api import get_server_session, get_server_session_sync, runtime_for
from ._inputs import RUNTIME_KEY, SCOPE_KEY
from ._responses import PENDING_KEY
from ._runtime import MISSING, AuthRuntime
from ._session import Session
from .guards import DEFAULT_SIGN_IN_URL, Denial, DenialResponse, check, denial_response, wants_html

Scope = MutableMapping[str, Any]


def runtime_of(scope: Mapping[str, Any]) -> AuthRuntime:
    """The middleware's runtime for this request, else the configured default."""
    runtime = scope.get(RUNTIME_KEY)
    if isinstance(runtime, AuthRuntime):
        return runtime
    return runtime_for(None)


async def session_of(scope: Scope, response: Any = None) -> Session | None:
    """The session the middleware resolved, or resolve it now.

    Without the middleware the session is resolved on every call (the cache
    keeps that cheap); ``response``, when given, receives refreshed cookies.
    """
    stored = scope.get(SCOPE_KEY, MISSING)
    if stored is not MISSING:
        return stored  # type: ignore[no-any-return]
    return await get_server_session(scope if response is None else (scope, response))


def session_of_sync(scope: Scope) -> Session | None:
    """``session_of`` for sync code (Starlette's threadpool endpoints)."""
    stored = scope.get(SCOPE_KEY, MISSING)
    if stored is not MISSING:
        return stored  # type: ignore[no-any-return]
    return get_server_session_sync(scope)


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def callback_url(scope: Scope) -> str:
    """Where sign-in should return to: this request's full URL.

    Absolute, as Auth.js v5 (and the Flask and Django integrations) do;
    Auth.js's default ``redirect`` callback admits it when it is on the
    front end's origin and falls back to the base URL otherwise. Behind a
    proxy, run the server with its proxy-headers option so the URL is the
    public one.
    """
    return str(URL(scope=scope))


@dataclass(frozen=True, slots=True)
class Guard:
    """One route's requirements and how a denial is answered.

    Built once when a route is decorated (an empty requirement such as
    ``requires_role()`` is a ``ValueError`` then, not at the first request).
    """

    require_role: tuple[str, ...] = ()
    require_permission: tuple[str, ...] = ()
    redirect_html: bool = True
    sign_in_url: str = DEFAULT_SIGN_IN_URL

    @classmethod
    def build(
        cls,
        *,
        roles: Iterable[str] = (),
        permissions: Iterable[str] = (),
        redirect_html: bool = True,
        sign_in_url: str = DEFAULT_SIGN_IN_URL,
        what: str = "",
    ) -> Guard:
        guard = cls(tuple(roles), tuple(permissions), bool(redirect_html), sign_in_url)
        required = (("role", guard.require_role), ("permission", guard.require_permission))
        for name, values in required:
            if what == name and not values:
                raise ValueError(f"name at least one {name} to require")
            if any(not isinstance(v, str) or not v for v in values):
                raise ValueError(f"required {name}s must be non-empty strings, got {values!r}")
        return guard

    def check(self, session: Any) -> Denial | None:
        return check(
            session,
            require_role=self.require_role or None,
            require_permission=self.require_permission or None,
        )

    def respond(self, denial: Denial, scope: Scope) -> DenialResponse:
        html = self.redirect_html and wants_html(header(scope, b"accept"))
        return denial_response(
            denial, html=html, callback_url=callback_url(scope), sign_in_url=self.sign_in_url
        )


# -- writing sessions --------------------------------------------------------


def cookie_sink(scope: Mapping[str, Any], response: Any) -> Any:
    """Where cookies go: the caller's response, else the middleware's response."""
    if response is not None:
        return response
    sink = scope.get(PENDING_KEY)
    if sink is None:
        raise RuntimeError(
            "no response to write the session cookie on: pass response=, or install "
            "AuthSessionMiddleware so the cookie is added to whatever response the app sends"
        )
    return sink


async def sign_in(
    scope: Scope,
    user: Mapping[str, Any],
    response: Any = None,
    *,
    account: Any = None,
    profile: Any = None,
    is_new_user: bool = False,
) -> str:
    return await runtime_of(scope).sign_in(
        user,
        cookie_sink(scope, response),
        request=scope,
        account=account,
        profile=profile,
        is_new_user=is_new_user,
    )


async def sign_out(scope: Scope, response: Any = None) -> None:
    await runtime_of(scope).sign_out(scope, cookie_sink(scope, response))


async def update_session(scope: Scope, data: Any, response: Any = None) -> Session | None:
    return await runtime_of(scope).update_session(scope, data, cookie_sink(scope, response))
