"""The module-level API: the process's runtime and the one-call session readers."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ._config import DEFAULT_MAX_AGE, AuthConfig, secrets_from_env
from ._cookies import candidate_names
from ._errors import AuthRuntimeNotConfigured, ConfigurationError
from ._inputs import RUNTIME_KEY, SCOPE_KEY, RequestView, current_request, to_view
from ._proxy_config import DEFAULT_RETRIES, DEFAULT_TIMEOUT, ProxyConfig
from ._runtime import MISSING, AuthRuntime
from ._session import Session
from ._tokens import decode_found, find_token
from .jwt._errors import JWTDecodeError

log = logging.getLogger("authsession")

_default: AuthRuntime | None = None
# Runtimes made for configs passed per call, so their caches persist between
# calls. Bounded: a program that builds a new config per request must not grow.
_by_config: OrderedDict[AuthConfig | ProxyConfig, AuthRuntime] = OrderedDict()
_BY_CONFIG_MAX = 32
_lock = threading.Lock()


def configure_auth_runtime(config: AuthConfig) -> AuthRuntime:
    """Make ``config`` the process default (local mode) and return its runtime."""
    global _default
    runtime = runtime_for(config)
    _default = runtime
    return runtime


def configure_auth_proxy_runtime(
    upstream_url: str,
    *,
    base_path: str = "/api/auth",
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    cache: Any = None,
    transport: Any = None,
    forward_set_cookie: bool = True,
    sign_out_upstream: bool = False,
    allow_insecure_http: bool = False,
    cookie_name: str | None = None,
    secure_cookie: bool | None = None,
    max_age: int = DEFAULT_MAX_AGE,
    breaker_threshold: int = 5,
    breaker_cooldown: float = 5.0,
) -> AuthRuntime:
    """Make proxy mode the process default: sessions come from ``GET
    {upstream_url}{base_path}/session`` on an Auth.js app (no secret needed).

    Only the request's session cookie is forwarded, plus the static
    ``headers``; upstream failures read as no session. See docs/proxy.md for
    every option. Raises ``ConfigurationError`` for a bad setting.
    """
    global _default
    runtime = AuthRuntime(
        ProxyConfig(
            upstream_url=upstream_url,
            base_path=base_path,
            headers=headers,
            timeout=timeout,
            retries=retries,
            cache=cache,
            transport=transport,
            forward_set_cookie=forward_set_cookie,
            sign_out_upstream=sign_out_upstream,
            allow_insecure_http=allow_insecure_http,
            cookie_name=cookie_name,
            secure_cookie=secure_cookie,
            max_age=max_age,
            breaker_threshold=breaker_threshold,
            breaker_cooldown=breaker_cooldown,
        )
    )
    _default = runtime
    return runtime


def reset_auth_runtime() -> None:
    """Forget the configured runtime and every per-config runtime (for tests)."""
    global _default
    with _lock:
        _default = None
        _by_config.clear()


def current_runtime() -> AuthRuntime | None:
    return _default


def runtime_for(config: AuthConfig | ProxyConfig | AuthRuntime | None) -> AuthRuntime:
    """The runtime for a ``config=`` argument, or the configured default."""
    if config is None:
        if _default is None:
            raise AuthRuntimeNotConfigured()
        return _default
    if isinstance(config, AuthRuntime):
        return config
    if not isinstance(config, (AuthConfig, ProxyConfig)):
        raise ConfigurationError(
            "config must be an AuthConfig, a ProxyConfig or an AuthRuntime, "
            f"got {type(config).__name__}"
        )
    with _lock:
        runtime = _by_config.get(config)
        if runtime is None:
            runtime = AuthRuntime(config)
            _by_config[config] = runtime
            if len(_by_config) > _BY_CONFIG_MAX:
                _by_config.popitem(last=False)
        else:
            _by_config.move_to_end(config)
        return runtime


async def get_server_session(
    input: Any = None, config: AuthConfig | AuthRuntime | None = None
) -> Session | None:
    """The signed-in user's session, or None.

    ``input`` is a request (Starlette, FastAPI, Quart, Flask/Werkzeug, Django),
    an ASGI scope or WSGI environ, a headers mapping, a mapping of cookies, a
    ``Cookie`` header string, or a ``(request, response)`` pair whose response
    receives refreshed cookies; None means the request the middleware is
    handling. Raises only ``AuthRuntimeNotConfigured`` and configuration errors.
    """
    if input is None and config is None:
        stored = _resolved_for_current_request()
        if stored is not MISSING:
            return stored  # type: ignore[no-any-return]
    view = to_view(input)
    return await _runtime_for_view(config, view).get_session(view)


def get_server_session_sync(
    input: Any = None, config: AuthConfig | AuthRuntime | None = None
) -> Session | None:
    """``get_server_session`` for sync code."""
    if input is None and config is None:
        stored = _resolved_for_current_request()
        if stored is not MISSING:
            return stored  # type: ignore[no-any-return]
    view = to_view(input)
    return _runtime_for_view(config, view).get_session_sync(view)


def _resolved_for_current_request() -> Any:
    """What the middleware already resolved for the request it is handling.

    The commonest call in a handler is ``get_server_session()`` with no
    argument; answering it from the scope/environ directly skips building a
    request view. The rule is the runtime's own: the middleware's runtime,
    and the value it stored. ``MISSING`` when there is none (lazy mode before
    the first read, or no middleware).
    """
    held = current_request.get()  # request_in_progress(), without its call
    if not held:
        return MISSING
    current = held[0]
    store = current.store if isinstance(current, RequestView) else current
    if store is None or store.get(RUNTIME_KEY) is None:
        return MISSING
    return store.get(SCOPE_KEY, MISSING)


def _runtime_for_view(config: AuthConfig | AuthRuntime | None, view: RequestView) -> AuthRuntime:
    """An explicit config wins; then the middleware's runtime; then the default."""
    if config is None and view.store is not None:
        runtime = view.store.get(RUNTIME_KEY)
        if isinstance(runtime, AuthRuntime):
            return runtime
    return runtime_for(config)


def get_token(
    input: Any = None,
    *,
    secret: str | list[str] | tuple[str, ...] | None = None,
    salt: str | None = None,
    cookie_name: str | None = None,
    secure_cookie: bool | None = None,
    raw: bool = False,
) -> dict[str, Any] | str | None:
    """The decoded session token (claims), or the raw token with ``raw=True``; None if absent.

    Like Auth.js's ``getToken``: no callbacks run. ``secret`` defaults to the
    configured runtime's, then ``AUTH_SECRET`` / ``NEXTAUTH_SECRET``. A
    missing secret raises ``ConfigurationError``; a bad token gives None.
    """
    candidates = candidate_names(cookie_name, secure_cookie)
    view = to_view(input)
    found = find_token(view, candidates)
    if found is None:
        return None
    if raw:
        return found.value
    if secret is None and view.store is not None:
        runtime = view.store.get(RUNTIME_KEY)
        if isinstance(runtime, AuthRuntime) and runtime.config.secrets:
            secret = runtime.config.secrets
    secrets = _secrets_for_get_token(secret)
    if salt is not None and found.spec is not None and found.spec.version == 5:
        from .jwt import decode_with

        try:
            return decode_with(found.value, secrets, salt)
        except JWTDecodeError as exc:
            log.info("authsession: get_token rejected the token: %s", exc.reason)
            return None
    try:
        claims, _ = decode_found(found, secrets, candidates)
    except JWTDecodeError as exc:
        log.info("authsession: get_token rejected the token: %s", exc.reason)
        return None
    return claims


def _secrets_for_get_token(secret: Any) -> tuple[str, ...]:
    if secret is not None:
        return AuthConfig._normalize_secret(secret)
    if _default is not None and _default.config.secrets:
        return _default.config.secrets
    secrets = secrets_from_env()
    if not secrets:
        raise ConfigurationError(
            "get_token needs a secret: pass secret=, configure a runtime, or set AUTH_SECRET"
        )
    return secrets
