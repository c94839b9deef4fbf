"""One adapter, many callers: async code on any loop, sync code on any thread.

The rule (docs/database.md): adapter I/O always runs on authsession's bridge
loop, so an adapter whose connections belong to one event loop (psycopg's
pool, redis.asyncio) is never used from another, whichever loop or thread
asked. ``LoopBoundAdapter`` fails the way those drivers do when that rule is
broken. The exception: an adapter around the application's own client
(``bound_to_caller_loop``) runs on the caller's loop, for the async API only.
Plain (non-async) adapter methods run in worker threads, side by side.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

import authsession
from authsession import AuthConfig, AuthRuntime, ConfigurationError, get_server_session_sync
from authsession._bridge import _LOOP
from authsession.adapters import MemoryAdapter

from .conftest import COOKIE, USER, CountingAdapter, seed


class LoopBoundAdapter(CountingAdapter):
    """Binds to the first loop that uses it, like a driver's connection pool."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.home: asyncio.AbstractEventLoop | None = None

    def __getattr__(self, name: str) -> Any:
        counted = super().__getattr__(name)
        if not callable(counted) or name.startswith("_"):
            return counted

        async def bound(*args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            if self.home is None:
                self.home = loop
            elif loop is not self.home:
                raise RuntimeError("this connection is attached to a different loop")
            return await counted(*args, **kwargs)

        return bound


def test_every_caller_uses_the_adapter_on_one_loop():
    store = MemoryAdapter()
    adapter = LoopBoundAdapter(store)
    rt = AuthRuntime(AuthConfig(strategy="database", adapter=adapter, cache=False))
    tokens = [seed(store, user={**USER, "email": f"{i}@example.com"})[0] for i in range(4)]

    async def read_all() -> list[Any]:
        return [await rt.get_session({COOKIE: t}) for t in tokens]

    # Two app loops one after the other (asyncio.run, or one loop per test) ...
    assert all(asyncio.run(read_all()))
    assert all(asyncio.run(read_all()))
    # ... and sync callers on several threads.
    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(lambda t: rt.get_session_sync({COOKIE: t}), tokens * 5))
    # Writes too.
    token = asyncio.run(rt.sign_in(dict(USER)))
    rt.sign_out_sync({COOKIE: token})
    assert adapter.home is _LOOP.loop()
    assert len(adapter.loops) == 1
    assert adapter.calls["create_session"] == 1 and adapter.calls["delete_session"] == 1


async def test_async_api_on_the_test_loop_and_sync_api_together():
    store = MemoryAdapter()
    adapter = LoopBoundAdapter(store)
    rt = AuthRuntime(AuthConfig(strategy="database", adapter=adapter, cache=False))
    token, _ = seed(store)
    sync_result: list[Any] = []
    thread = threading.Thread(
        target=lambda: sync_result.append(rt.get_session_sync({COOKIE: token}))
    )
    thread.start()
    assert (await rt.get_session({COOKIE: token})).user.email == USER["email"]
    await asyncio.to_thread(thread.join, 5)
    assert sync_result and sync_result[0].user.email == USER["email"]
    assert adapter.home is _LOOP.loop() and adapter.home is not asyncio.get_running_loop()


def test_sync_api_from_wsgi_threads():
    store = MemoryAdapter()
    rt = authsession.configure_auth_runtime(
        AuthConfig(strategy="database", adapter=store, max_age=3600, update_age=600)
    )
    users = [{**USER, "email": f"w{i}@example.com"} for i in range(5)]
    tokens = [seed(store, user=u)[0] for u in users]

    @Request.application
    def app(request: Request) -> Response:
        session = get_server_session_sync(request)
        return Response(session.user.email if session else "anonymous")

    def call(i: int) -> str:
        client = Client(app)
        if i % 6 == 5:
            return client.get("/").get_data(as_text=True)
        client.set_cookie(COOKIE, tokens[i % 6])
        return client.get("/").get_data(as_text=True)

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(call, range(120)))
    expected = ["anonymous" if i % 6 == 5 else users[i % 6]["email"] for i in range(120)]
    assert bodies == expected
    assert rt.cache_stats()["misses"] >= len(tokens)


def test_plain_sync_adapter_methods_are_accepted():
    """A hand-written adapter may use plain functions; they run in worker threads."""

    class SyncAdapter:
        def __init__(self) -> None:
            self.rows: dict[str, dict[str, Any]] = {}
            self.threads: set[str] = set()

        def get_session_and_user(self, session_token: str) -> Any:
            self.threads.add(threading.current_thread().name)
            return self.rows.get(session_token)

        def update_session(self, **kwargs: Any) -> Any:
            return None

        def delete_session(self, session_token: str) -> None:
            self.rows.pop(session_token, None)

        def create_session(self, **kwargs: Any) -> Any:
            return kwargs

        def create_user(self, user: dict[str, Any]) -> dict[str, Any]:
            return {**user, "id": "1"}

        def get_user(self, id: str) -> Any:
            return None

    from datetime import datetime, timedelta, timezone

    adapter = SyncAdapter()
    adapter.rows["t"] = {
        "session": {"expires": datetime.now(timezone.utc) + timedelta(days=29, hours=23)},
        "user": {"id": "1", "name": "N", "email": "e@example.com", "image": None},
    }
    rt = AuthRuntime(AuthConfig(strategy="database", adapter=adapter))
    assert rt.get_session_sync({COOKIE: "t"}).user.name == "N"
    assert asyncio.run(rt.get_session({COOKIE: "t"})).user.name == "N"
    assert adapter.threads and "authsession-sync-bridge" not in adapter.threads


class _BarrierAdapter:
    """A plain-function adapter over a blocking driver: each read waits until
    ``parties`` reads are in flight at once (or gives up after 5 s)."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=5)

    def get_session_and_user(self, session_token: str) -> Any:
        from datetime import datetime, timedelta, timezone

        self.barrier.wait()  # BrokenBarrierError when the reads are serialised
        return {
            "session": {"expires": datetime.now(timezone.utc) + timedelta(days=29, hours=23)},
            "user": {"id": "1", "name": session_token, "email": None, "image": None},
        }

    def update_session(self, **kwargs: Any) -> Any:
        return None

    def delete_session(self, session_token: str) -> None:
        return None

    def create_session(self, **kwargs: Any) -> Any:
        return kwargs

    def create_user(self, user: dict[str, Any]) -> dict[str, Any]:
        return {**user, "id": "1"}

    def get_user(self, id: str) -> Any:
        return None


def test_plain_sync_adapter_calls_from_threads_run_side_by_side():
    """Before: every plain call ran on the one bridge thread, so a slow blocking
    adapter serialised all sessions of the process."""
    rt = AuthRuntime(AuthConfig(strategy="database", adapter=_BarrierAdapter(4), cache=False))
    with ThreadPoolExecutor(4) as pool:
        names = list(pool.map(lambda i: rt.get_session_sync({COOKIE: f"t{i}"}), range(4)))
    assert [s.user.name if s else None for s in names] == ["t0", "t1", "t2", "t3"]


async def test_plain_sync_adapter_calls_from_tasks_run_side_by_side():
    rt = AuthRuntime(AuthConfig(strategy="database", adapter=_BarrierAdapter(4), cache=False))
    sessions = await asyncio.gather(*(rt.get_session({COOKIE: f"a{i}"}) for i in range(4)))
    assert [s.user.name if s else None for s in sessions] == ["a0", "a1", "a2", "a3"]


class CallerBoundAdapter(LoopBoundAdapter):
    """What ``RedisAdapter(client=...)`` is: bound to the loop of the code that
    made its client, and saying so with ``bound_to_caller_loop``."""

    bound_to_caller_loop = True


async def test_a_caller_bound_adapter_runs_on_the_callers_loop():
    store = MemoryAdapter()
    adapter = CallerBoundAdapter(store)
    adapter.home = asyncio.get_running_loop()  # the app made its client on this loop
    rt = AuthRuntime(AuthConfig(strategy="database", adapter=adapter, cache=False))
    token = await rt.sign_in(dict(USER))
    sessions = await asyncio.gather(*(rt.get_session({COOKIE: token}) for _ in range(5)))
    assert all(s is not None and s.user.email == USER["email"] for s in sessions)
    assert await rt.update_session({COOKIE: token}, {"x": 1}) is not None
    await rt.sign_out({COOKIE: token})
    assert adapter.loops == {id(asyncio.get_running_loop())}
    assert adapter.calls["delete_session"] == 1


def test_the_sync_api_refuses_a_caller_bound_adapter_clearly(caplog):
    store = MemoryAdapter()
    adapter = CallerBoundAdapter(store)
    token, _ = seed(store)
    rt = AuthRuntime(AuthConfig(strategy="database", adapter=adapter, cache=False))
    with pytest.raises(ConfigurationError, match=r"sync API.*CallerBoundAdapter.*async API"):
        rt.sign_in_sync(dict(USER))
    # A read never raises; it is a setup mistake, not an outage: an ERROR that
    # says what to do, not the once-per-outage adapter warning.
    assert rt.get_session_sync({COOKIE: token}) is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "ConfigurationError" in errors[0].getMessage()
    assert "sync API" in errors[0].getMessage()
    assert rt.strategy.health.outages == 0
    assert adapter.total == 0  # never touched from the bridge loop
