"""Fixtures for the database strategy: adapters, runtimes, and adapter doubles.

Time is never slept through: a session of a given age is made by writing its
row with the ``expires`` it would have (``expires = now + max_age - age``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from authsession import AuthConfig, AuthRuntime
from authsession._bridge import run_sync
from authsession.adapters import AdapterUnavailable, MemoryAdapter, SQLiteAdapter

COOKIE = "authjs.session-token"
MAX_AGE = 3600
UPDATE_AGE = 600
USER = {"name": "Ada Lovelace", "email": "ada@example.com", "image": "https://example.com/ada.png"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def expires_for_age(age: float, max_age: int = MAX_AGE) -> datetime:
    """The ``expires`` of a session last extended ``age`` seconds ago."""
    return utcnow() + timedelta(seconds=max_age - age)


def set_cookies(response: list[tuple[str, str]]) -> dict[str, str]:
    """name -> whole Set-Cookie header, from an ``apply_writes`` list response."""
    return {value.split("=", 1)[0]: value for key, value in response if key == "set-cookie"}


def cookie_attrs(header: str) -> dict[str, str]:
    pair, *attrs = header.split(";")
    out = {"value": pair.split("=", 1)[1]}
    for attr in attrs:
        key, _, val = attr.strip().partition("=")
        out[key.lower()] = val
    return out


class CountingAdapter:
    """Wraps an adapter and counts each method call (adapter round trips)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.loops: set[int] = set()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if not callable(method) or name.startswith("_"):
            return method

        async def counted(*args: Any, **kwargs: Any) -> Any:
            import asyncio

            with self._lock:
                self.calls[name] += 1
                self.loops.add(id(asyncio.get_running_loop()))
            return await method(*args, **kwargs)

        return counted

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class FlakyAdapter(CountingAdapter):
    """An adapter whose store can be switched off: every call then raises
    ``AdapterUnavailable`` (with the token in the message, as a careless
    driver might, to prove it is redacted)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.down = False

    def __getattr__(self, name: str) -> Any:
        counted = super().__getattr__(name)
        if not callable(counted) or name.startswith("_"):
            return counted

        async def maybe_failing(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                with self._lock:
                    self.calls["failed:" + name] += 1
                detail = kwargs.get("session_token", "")
                raise AdapterUnavailable(f"connection refused while reading {detail}")
            return await counted(*args, **kwargs)

        return maybe_failing


@pytest.fixture(params=["memory", "sqlite"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each logic test runs on MemoryAdapter and on SQLiteAdapter (a file)."""
    if request.param == "memory":
        yield MemoryAdapter()
        return
    store = SQLiteAdapter(tmp_path / "auth.db")
    try:
        yield store
    finally:
        run_sync(store.aclose())


RuntimeFactory = Callable[..., AuthRuntime]


@pytest.fixture
def make_runtime(adapter: Any) -> RuntimeFactory:
    def factory(**options: Any) -> AuthRuntime:
        options.setdefault("adapter", adapter)
        options.setdefault("max_age", MAX_AGE)
        options.setdefault("update_age", UPDATE_AGE)
        return AuthRuntime(AuthConfig(strategy="database", **options))

    return factory


def seed(
    adapter: Any,
    *,
    age: float = 0.0,
    token: str | None = None,
    user: dict | None = None,
    expires: datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    """A stored user and a session row ``age`` seconds old; returns (token, user)."""
    stored = run_sync(adapter.create_user(dict(user or USER)))
    token = token or f"tok-{time.monotonic_ns()}"
    run_sync(
        adapter.create_session(
            session_token=token,
            user_id=stored["id"],
            expires=expires if expires is not None else expires_for_age(age),
        )
    )
    return token, stored


def row(adapter: Any, token: str) -> dict[str, Any] | None:
    found = run_sync(adapter.get_session_and_user(token))
    return None if found is None else found["session"]
