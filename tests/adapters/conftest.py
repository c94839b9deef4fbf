"""One fixture, ``adapter``, parametrised over every adapter the package ships.

PostgreSQL runs in a schema unique to this test run (created with the shipped
``postgres.sql``, dropped at the end); Redis under a unique key prefix (its keys
deleted at the end). Both skip when the service is unreachable, and fail under
``CI=true`` (see ``tests/_services.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._services import auth_schema, redis_key_prefix

from authsession.adapters import MemoryAdapter, PostgresAdapter, RedisAdapter, SQLiteAdapter

KINDS = ["memory", "sqlite", "sqlite-file", "postgres", "redis"]


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[tuple[str, str]]:
    """(dsn, schema): a fresh schema holding the Auth.js tables, dropped afterwards."""
    with auth_schema("authsession_test") as where:
        yield where


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[tuple[str, str]]:
    """(url, prefix): a key prefix no other run uses; its keys are deleted afterwards."""
    with redis_key_prefix("authsession_test") as where:
        yield where


def make_adapter(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> Any:
    if kind == "memory":
        return MemoryAdapter()
    if kind == "sqlite":
        return SQLiteAdapter(":memory:")
    if kind == "sqlite-file":
        return SQLiteAdapter(tmp_path / "auth.db")
    if kind == "postgres":
        dsn, schema = request.getfixturevalue("pg_schema")
        return PostgresAdapter(dsn, schema=schema, **options)
    if kind == "redis":
        url, prefix = request.getfixturevalue("redis_prefix")
        return RedisAdapter(url, prefix=prefix, **options)
    raise AssertionError(kind)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def adapter(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    store = make_adapter(kind, request, tmp_path)
    try:
        yield store
    finally:
        await store.aclose()
