"""Django integration: a middleware, ``request.auth_session``, guards and cookie helpers.

::

    # settings.py
    MIDDLEWARE = [..., "authsession.django.AuthSessionMiddleware", ...]
    AUTHSESSION = {"secret": os.environ["AUTH_SECRET"], "sign_in_url": "/login"}

    # views.py
    from authsession.django import login_required

    @login_required
    def me(request):
        return JsonResponse(request.auth_session)

``settings.AUTHSESSION`` is a dict of ``AuthConfig`` fields (plus the
integration's own ``sign_in_url``), an ``AuthConfig`` or an ``AuthRuntime``;
without it (or with only ``sign_in_url``) the process runtime that
``configure_auth_runtime`` installs is used, looked up per request.

The middleware resolves the session eagerly, before the view runs, so
``request.auth_session`` is a real ``Session`` or ``None`` and ``is None``
means what it says (a lazy proxy could not be ``None``). The anonymous path
costs a substring check of the Cookie header and a signed-in one a cache hit.
The middleware works in both of Django's modes: sync under WSGI, and async
under ASGI (no thread hop to resolve). Access decisions come from
``authsession.guards``; this module only turns them into Django responses.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timezone
from email.utils import format_datetime
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.signals import setting_changed  # type: ignore[import-untyped]
from django.http import HttpResponse, JsonResponse  # type: ignore[import-untyped]

from ._api import current_runtime, runtime_for
from ._config import AuthConfig
from ._cookies import CookieWrite
from ._errors import AuthRuntimeNotConfigured, ConfigurationError
from ._inputs import (
    RUNTIME_KEY,
    SCOPE_KEY,
    Held,
    RequestView,
    current_request,
    leave_request,
    to_view,
)
from ._responses import PENDING_KEY, PendingCookies
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
    "AuthSessionMiddleware",
    "aget_auth_session",
    "asign_in",
    "asign_out",
    "aupdate_session",
    "get_auth_session",
    "login_required",
    "permission_required",
    "role_required",
    "sign_in",
    "sign_out",
    "update_session",
]

log = logging.getLogger("authsession")
F = TypeVar("F", bound=Callable[..., Any])

SETTING = "AUTHSESSION"
ATTRIBUTE = "auth_session"  # request.auth_session; request.session is Django's own
_INTEGRATION_KEYS = frozenset({"sign_in_url"})


# -- settings ----------------------------------------------------------------


class _Settings:
    """``settings.AUTHSESSION`` read once, and again after ``override_settings``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: tuple[AuthRuntime | None, str] | None = None

    def get(self) -> tuple[AuthRuntime | None, str]:
        value = self._value
        if value is None:
            with self._lock:
                value = self._value = _read_settings()
        return value

    def reset(self, *, setting: str = "", **kwargs: Any) -> None:
        if setting == SETTING:
            self._value = None


def _read_settings() -> tuple[AuthRuntime | None, str]:
    value = getattr(settings, SETTING, None)
    if value is None:
        return None, DEFAULT_SIGN_IN_URL
    if isinstance(value, AuthRuntime):
        return value, DEFAULT_SIGN_IN_URL
    if isinstance(value, AuthConfig):
        return runtime_for(value), DEFAULT_SIGN_IN_URL
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(
            f"settings.{SETTING} must be a dict of AuthConfig fields, an AuthConfig or an "
            f"AuthRuntime, got {type(value).__name__}"
        )
    options = dict(value)
    sign_in_url = options.pop("sign_in_url", DEFAULT_SIGN_IN_URL)
    if not isinstance(sign_in_url, str) or not sign_in_url:
        raise ImproperlyConfigured(
            f"settings.{SETTING}['sign_in_url'] must be a URL, got {sign_in_url!r}"
        )
    if not options:  # only integration options: the process runtime serves
        return None, sign_in_url
    try:
        config = AuthConfig(**options)
    except TypeError as exc:
        raise ImproperlyConfigured(
            f"settings.{SETTING} has a key that is neither an AuthConfig field nor one of "
            f"{sorted(_INTEGRATION_KEYS)}: {exc}"
        ) from exc
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"settings.{SETTING}: {exc}") from exc
    return runtime_for(config), sign_in_url


_settings = _Settings()
setting_changed.connect(_settings.reset, dispatch_uid="authsession.django.settings")


def _runtime(store: Mapping[str, Any] | None) -> AuthRuntime:
    """An outer ``AuthSessionMiddleware``'s runtime, else the settings', else the process's."""
    if store is not None:
        runtime = store.get(RUNTIME_KEY)
        if isinstance(runtime, AuthRuntime):
            return runtime
    runtime = _settings.get()[0] or current_runtime()
    if runtime is None:
        raise AuthRuntimeNotConfigured(
            f"authsession has no runtime: set settings.{SETTING} = {{'secret': ...}} "
            "(AuthConfig fields), or call authsession.configure_auth_runtime() at start-up"
        )
    return runtime


def _view(request: Any) -> RequestView:
    view = to_view(request)
    # is_secure() honours SECURE_PROXY_SSL_HEADER; it picks the __Secure- name at sign-in.
    view.https = request.is_secure()
    return view


# -- cookies -----------------------------------------------------------------


class _CookieSink(PendingCookies):
    """Pending cookies that also keep the writes, for ``HttpResponse.set_cookie``."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = False
        self.writes: dict[str, CookieWrite] = {}

    def add(self, writes: Iterable[CookieWrite]) -> None:
        writes = tuple(writes)
        super().add(writes)
        self.writes.update((w.name, w) for w in writes)

    def discard_family(self, families: set[str]) -> None:
        super().discard_family(families)
        for name in [n for n in self.writes if n not in self]:
            del self.writes[name]


_EPOCH_HTTP = "Thu, 01 Jan 1970 00:00:00 GMT"


def _set_cookies(response: Any, writes: Iterable[CookieWrite]) -> None:
    """Each write through Django's ``set_cookie``, attributes as Auth.js writes them.

    Django refuses ``expires`` and ``max_age`` together when ``expires`` is a
    datetime, and turns a datetime into ``Max-Age``; a preformatted string
    keeps the ``Expires``-only cookie Auth.js sends.
    """
    for w in writes:
        deleting = w.max_age == 0
        expires = None
        if deleting:
            expires = _EPOCH_HTTP
        elif w.expires is not None:
            expires = format_datetime(w.expires.astimezone(timezone.utc), usegmt=True)
        response.set_cookie(
            w.name,
            w.value,
            max_age=w.max_age,
            expires=expires,
            path=w.path,
            domain=w.domain,
            secure=w.secure,
            httponly=w.httponly,
            samesite=w.samesite.capitalize(),
        )


def _flush(sink: _CookieSink | None, response: Any) -> None:
    if not sink:
        return
    own = response.cookies
    # The view's own decision about a cookie wins over ours.
    _set_cookies(response, [w for name, w in sink.writes.items() if name not in own])
    sink.clear()
    sink.writes.clear()


# -- the middleware ----------------------------------------------------------


class AuthSessionMiddleware:
    """Sets ``request.auth_session`` (a ``Session`` or None) for every request.

    Add ``"authsession.django.AuthSessionMiddleware"`` to ``settings.MIDDLEWARE``
    (anywhere before the views that read it). Refreshed and cleared session
    cookies are set on the response; a cookie the view set itself wins.
    Behind the generic ``authsession.AuthSessionMiddleware`` (wrapping the
    WSGI or ASGI handler) it reuses that middleware's result and its cookie
    writing. Bad cookies read as signed out, never as an error.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        _settings.get()  # a bad setting fails when Django loads the middleware

    def _prepare(self, request: Any) -> tuple[RequestView, AuthRuntime, _CookieSink | None]:
        view = _view(request)
        store = view.store if view.store is not None else request.META
        runtime = _runtime(store)
        sink = None
        if PENDING_KEY not in store:
            # No outer AuthSessionMiddleware: cookies are ours to write. With
            # the sink and runtime in the request's environ / scope, the
            # runtime stores its result there and every later reader
            # (get_server_session(request), the helpers) shares it.
            sink = _CookieSink()
            store[PENDING_KEY] = sink
            store[RUNTIME_KEY] = runtime
            view.store = store
            view.response = sink
        return view, runtime, sink

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        view, runtime, sink = self._prepare(request)
        try:
            session = runtime.get_session_sync(view)
        except Exception:  # never a 500 for a session we could not read
            log.exception("authsession: session resolution failed; continuing signed out")
            session = None
        setattr(request, ATTRIBUTE, session)
        held: Held = [view]
        token = current_request.set(held)
        try:
            response = self.get_response(request)
        finally:
            leave_request(held, token, runtime)  # see _inputs.current_request
        _flush(sink, response)
        return response

    async def __acall__(self, request: Any) -> Any:
        view, runtime, sink = self._prepare(request)
        try:
            session = await runtime.get_session(view)
        except Exception:
            log.exception("authsession: session resolution failed; continuing signed out")
            session = None
        setattr(request, ATTRIBUTE, session)
        held: Held = [view]
        token = current_request.set(held)
        try:
            response = await cast("Callable[[Any], Awaitable[Any]]", self.get_response)(request)
        finally:
            leave_request(held, token, runtime)
        _flush(sink, response)
        return response


# -- reading -----------------------------------------------------------------


def get_auth_session(request: Any) -> Session | None:
    """``request.auth_session``, resolving it now if the middleware did not run.

    Works behind either middleware, or with none (then refreshed cookies are
    not written: add the middleware for that).
    """
    session = getattr(request, ATTRIBUTE, MISSING)
    if session is MISSING:
        view = _view(request)
        session = _runtime(view.store).get_session_sync(view)
        setattr(request, ATTRIBUTE, session)
    return cast("Session | None", session)


async def aget_auth_session(request: Any) -> Session | None:
    """``get_auth_session`` for async views."""
    session = getattr(request, ATTRIBUTE, MISSING)
    if session is MISSING:
        view = _view(request)
        session = await _runtime(view.store).get_session(view)
        setattr(request, ATTRIBUTE, session)
    return cast("Session | None", session)


# -- guards ------------------------------------------------------------------


def _denied(request: Any, denial: Denial, sign_in_url: str | None) -> Any:
    plan = denial_response(
        denial,
        html=wants_html(request.headers.get("Accept")),
        callback_url=request.build_absolute_uri(),
        sign_in_url=sign_in_url or _settings.get()[1],
    )
    if plan.json is not None:
        response = JsonResponse(plan.json, status=plan.status)
    else:
        response = HttpResponse(plan.text or "", status=plan.status)
    for name, value in plan.headers:
        response[name] = value
    return response


def _guard(
    view: F,
    sign_in_url: str | None,
    require_role: tuple[str, ...] | None = None,
    require_permission: tuple[str, ...] | None = None,
) -> F:
    def refusal(request: Any, session: Session | None) -> Any:
        denial = check(session, require_role=require_role, require_permission=require_permission)
        return None if denial is None else _denied(request, denial, sign_in_url)

    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_guarded(request: Any, *args: Any, **kwargs: Any) -> Any:
            refused = refusal(request, await aget_auth_session(request))
            if refused is not None:
                return refused
            return await view(request, *args, **kwargs)

        return cast(F, async_guarded)

    @functools.wraps(view)
    def guarded(request: Any, *args: Any, **kwargs: Any) -> Any:
        refused = refusal(request, get_auth_session(request))
        return refused if refused is not None else view(request, *args, **kwargs)

    return cast(F, guarded)


def login_required(view: F | None = None, /, *, sign_in_url: str | None = None) -> Any:
    """Only signed-in users reach the view (sync or async; ``method_decorator`` for classes).

    Otherwise a browser navigation (``Accept: text/html``) is redirected (303)
    to the sign-in URL with ``callbackUrl`` set to the full request URL, and
    any other client gets ``401`` JSON. Use as ``@login_required`` or
    ``@login_required(sign_in_url=...)``; the default is
    ``settings.AUTHSESSION["sign_in_url"]``, else Auth.js's ``/api/auth/signin``.
    """
    if view is None:
        return lambda inner: _guard(inner, sign_in_url)
    return _guard(view, sign_in_url)


def role_required(*roles: str, sign_in_url: str | None = None) -> Callable[[F], F]:
    """Signed-in users holding *any* of ``roles``; others 403 (signed out: as login_required)."""
    required = decorator_names("role", roles)
    return lambda view: _guard(view, sign_in_url, require_role=required)


def permission_required(*permissions: str, sign_in_url: str | None = None) -> Callable[[F], F]:
    """Signed-in users holding *all* of ``permissions``; others get 403."""
    required = decorator_names("permission", permissions)
    return lambda view: _guard(view, sign_in_url, require_permission=required)


# -- writing sessions --------------------------------------------------------


def _writer(view: RequestView, response: Any) -> tuple[PendingCookies, Any]:
    """The sink the runtime writes into, and the Django response to copy it to."""
    if response is not None:
        return _CookieSink(), response
    if not isinstance(view.response, PendingCookies):
        raise ImproperlyConfigured(
            "no response to write the session cookies to: pass response=, or add "
            "'authsession.django.AuthSessionMiddleware' to settings.MIDDLEWARE"
        )
    return view.response, None


def _mirror(request: Any, view: RequestView, session: Session | None) -> None:
    """``request.auth_session`` after an update: what the runtime now holds for the request."""
    store = view.store
    if store is not None and SCOPE_KEY in store:
        session = store[SCOPE_KEY]
    if session is not None or hasattr(request, ATTRIBUTE):
        setattr(request, ATTRIBUTE, session)


def _copy(sink: PendingCookies, response: Any) -> None:
    if response is not None and isinstance(sink, _CookieSink):
        _set_cookies(response, sink.writes.values())


def sign_in(
    request: Any,
    user: Mapping[str, Any],
    response: Any = None,
    *,
    account: Any = None,
    profile: Any = None,
    is_new_user: bool = False,
) -> str:
    """Start a session for ``user`` (``id``, ``name``, ``email``, ``image``, …); returns the token.

    The cookie (chunked when large) goes on ``response``, or, when it is None,
    on whatever response the middleware sees this request return.
    """
    view = _view(request)
    sink, target = _writer(view, response)
    token = _runtime(view.store).sign_in_sync(
        user, sink, request=view, account=account, profile=profile, is_new_user=is_new_user
    )
    _copy(sink, target)
    return token


async def asign_in(
    request: Any,
    user: Mapping[str, Any],
    response: Any = None,
    *,
    account: Any = None,
    profile: Any = None,
    is_new_user: bool = False,
) -> str:
    """``sign_in`` for async views."""
    view = _view(request)
    sink, target = _writer(view, response)
    token = await _runtime(view.store).sign_in(
        user, sink, request=view, account=account, profile=profile, is_new_user=is_new_user
    )
    _copy(sink, target)
    return token


def sign_out(request: Any, response: Any = None) -> None:
    """End the session: forget it, clear every cookie chunk; ``request.auth_session`` is None."""
    view = _view(request)
    sink, target = _writer(view, response)
    _runtime(view.store).sign_out_sync(view, sink)
    _copy(sink, target)
    setattr(request, ATTRIBUTE, None)


async def asign_out(request: Any, response: Any = None) -> None:
    """``sign_out`` for async views."""
    view = _view(request)
    sink, target = _writer(view, response)
    await _runtime(view.store).sign_out(view, sink)
    _copy(sink, target)
    setattr(request, ATTRIBUTE, None)


def update_session(request: Any, data: Any, response: Any = None) -> Session | None:
    """Auth.js ``update(data)``: re-run the callbacks with ``trigger="update"``.

    Returns the new session (also ``request.auth_session`` from now on), or
    None when there is no session to update.
    """
    view = _view(request)
    sink, target = _writer(view, response)
    session = _runtime(view.store).update_session_sync(view, data, sink)
    _copy(sink, target)
    _mirror(request, view, session)
    return session


async def aupdate_session(request: Any, data: Any, response: Any = None) -> Session | None:
    """``update_session`` for async views."""
    view = _view(request)
    sink, target = _writer(view, response)
    session = await _runtime(view.store).update_session(view, data, sink)
    _copy(sink, target)
    _mirror(request, view, session)
    return session
