"""The public names and signatures fixed by shared/API.md, exactly as written there.

Acceptance checks outside this project call these by keyword; a renamed
parameter breaks them even when every internal caller still works.
"""

from __future__ import annotations

import inspect
import sys

import pytest

import authsession


def params(func: object) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(func).parameters)  # type: ignore[arg-type]


def test_top_level_names() -> None:
    for name in (
        "AuthConfig",
        "AuthRuntime",
        "configure_auth_runtime",
        "configure_auth_proxy_runtime",
        "reset_auth_runtime",
        "get_server_session",
        "get_server_session_sync",
        "get_token",
        "Session",
        "AuthSessionMiddleware",
        "AuthRuntimeNotConfigured",
    ):
        assert hasattr(authsession, name), name


def test_auth_config_keywords_and_defaults() -> None:
    p = params(authsession.AuthConfig)
    expected = {
        "secret": None,
        "strategy": "jwt",
        "adapter": None,
        "max_age": 2592000,
        "update_age": 86400,
        "cookie_name": None,
        "secure_cookie": None,
        "callbacks": None,
        "cache": None,
    }
    for name, default in expected.items():
        assert p[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert p[name].default == default, name


def test_function_signatures() -> None:
    assert list(params(authsession.get_server_session))[:2] == ["input", "config"]
    assert list(params(authsession.get_server_session_sync))[:2] == ["input", "config"]
    token = params(authsession.get_token)
    assert next(iter(token)) == "input"
    for name in ("secret", "salt", "cookie_name", "secure_cookie", "raw"):
        assert token[name].kind is inspect.Parameter.KEYWORD_ONLY
    proxy = params(authsession.configure_auth_proxy_runtime)
    assert next(iter(proxy)) == "upstream_url"
    assert proxy["base_path"].default == "/api/auth"
    for name in ("headers", "timeout", "retries", "cache", "transport"):
        assert proxy[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    middleware = params(authsession.AuthSessionMiddleware.__init__)
    assert list(middleware)[1:3] == ["app", "runtime_or_config"]
    assert middleware["protocol"].default == "auto"


def test_runtime_methods_take_input_by_name() -> None:
    runtime = authsession.AuthRuntime(authsession.AuthConfig(secret="s" * 32))
    assert list(params(runtime.sign_in))[:2] == ["user", "response"]
    for method in ("sign_out", "sign_out_sync"):
        assert list(params(getattr(runtime, method)))[:2] == ["input", "response"]
    for method in ("update_session", "update_session_sync"):
        assert list(params(getattr(runtime, method)))[:3] == ["input", "data", "response"]
    stats = runtime.cache_stats()
    for key in ("hits", "misses", "coalesced", "evictions", "invalidations"):
        assert key in stats
    # Called by keyword, as an outside check would.
    assert runtime.get_session_sync(None) is None
    runtime.sign_out_sync(input="", response=None)
    assert runtime.update_session_sync(input="", data={}, response=None) is None


def test_submodules() -> None:
    from authsession import jwt
    from authsession.adapters import MemoryAdapter, PostgresAdapter, RedisAdapter, SQLiteAdapter
    from authsession.guards import validate_session
    from authsession.jwt import JWTDecodeError, v4

    assert list(params(jwt.encode)) == ["token", "secret", "salt", "max_age"]
    assert list(params(jwt.decode)) == ["token", "secret", "salt"]
    assert list(params(v4.encode))[:3] == ["token", "secret", "max_age"]
    assert list(params(v4.decode))[:2] == ["token", "secret"]
    assert issubclass(JWTDecodeError, Exception)
    assert params(SQLiteAdapter)["path"].default == ":memory:"
    assert next(iter(params(PostgresAdapter))) == "dsn"
    assert next(iter(params(RedisAdapter))) == "url"
    MemoryAdapter()
    guard = params(validate_session)
    assert next(iter(guard)) == "session"
    assert guard["require_auth"].default is True
    for method in (
        "create_user",
        "get_user",
        "create_session",
        "get_session_and_user",
        "update_session",
        "delete_session",
    ):
        assert inspect.iscoroutinefunction(getattr(MemoryAdapter, method)), method


@pytest.mark.parametrize("module", ["flask", "fastapi"])
def test_framework_names(module: str) -> None:
    if module == "flask":
        from authsession.flask import current_session  # noqa: F401
    else:
        from authsession.fastapi import SessionDep  # noqa: F401


def test_importing_authsession_imports_no_framework_or_driver() -> None:
    import subprocess

    code = (
        "import sys, authsession, authsession.adapters, authsession.guards; "
        "bad = [m for m in ('flask', 'django', 'quart', 'fastapi', 'redis', 'psycopg', 'httpx') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
