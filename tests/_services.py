"""The real services tests may use: where they are, and skip-or-fail when they are not.

* :func:`postgres_dsn` / :func:`redis_url`: from ``AUTHSESSION_TEST_POSTGRES_DSN``
  (default ``postgresql://postgres@127.0.0.1:5432/test``) and
  ``AUTHSESSION_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
* :func:`require_postgres` / :func:`require_redis`: the DSN/URL after one
  successful round trip (checked once per process); otherwise the test is
  skipped with the reason -- or failed under ``CI=true``, where every service
  test must run.
* :func:`unique_name`: a name no other test run uses (schemas, key prefixes).
* :func:`auth_schema` / :func:`redis_key_prefix`: a fresh PostgreSQL schema
  holding the Auth.js tables / a fresh Redis key prefix, removed afterwards
  (the bodies of the fixtures that need them).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CONNECT_TIMEOUT = 3


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def unavailable(service: str, reason: str) -> NoReturn:
    """Skip with *reason*; under ``CI=true`` fail instead."""
    message = f"{service} unavailable: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: service tests must run, not skip)", pytrace=False)
    pytest.skip(message)


def postgres_dsn() -> str:
    return os.environ.get("AUTHSESSION_TEST_POSTGRES_DSN") or DEFAULT_POSTGRES_DSN


def redis_url() -> str:
    return os.environ.get("AUTHSESSION_TEST_REDIS_URL") or DEFAULT_REDIS_URL


def unique_name(prefix: str) -> str:
    """``<prefix>_<pid>_<random>``: lower case, a valid unquoted SQL identifier."""
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


_checked: dict[str, str | None] = {}  # service -> None (fine) or the failure reason


def _check_postgres(dsn: str) -> str | None:
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg is not installed ({exc}); pip install 'authsession[postgres]'"
    try:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"cannot connect to {dsn!r} (set AUTHSESSION_TEST_POSTGRES_DSN): {exc}"
    return None


def _check_redis(url: str) -> str | None:
    try:
        import redis
    except ImportError as exc:
        return f"redis is not installed ({exc}); pip install 'authsession[redis]'"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"cannot reach {url!r} (set AUTHSESSION_TEST_REDIS_URL): {exc}"
    return None


def require_postgres() -> str:
    """The test PostgreSQL DSN, once it answered; else skip (fail under CI)."""
    dsn = postgres_dsn()
    if "postgres" not in _checked:
        _checked["postgres"] = _check_postgres(dsn)
    reason = _checked["postgres"]
    if reason is not None:
        unavailable("PostgreSQL", reason)
    return dsn


def require_redis() -> str:
    """The test Redis URL, once it answered; else skip (fail under CI)."""
    url = redis_url()
    if "redis" not in _checked:
        _checked["redis"] = _check_redis(url)
    reason = _checked["redis"]
    if reason is not None:
        unavailable("Redis", reason)
    return url


@contextlib.contextmanager
def auth_schema(prefix: str) -> Iterator[tuple[str, str]]:
    """(dsn, schema): a new schema with the shipped Auth.js tables, dropped afterwards."""
    dsn = require_postgres()
    import psycopg

    from authsession.adapters._postgres import render_schema

    schema = unique_name(prefix)
    with psycopg.connect(dsn) as conn:
        conn.execute(render_schema(schema))
    try:
        yield dsn, schema
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def redis_key_prefix(prefix: str) -> Iterator[tuple[str, str]]:
    """(url, prefix): a key prefix no other run uses; its keys are deleted afterwards."""
    url = require_redis()
    import redis

    key_prefix = unique_name(prefix) + ":"
    try:
        yield url, key_prefix
    finally:
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=key_prefix + "*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
