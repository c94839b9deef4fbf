"""The database strategy on real PostgreSQL and Redis, through the shipped adapters.

Two things only a real server shows: the whole flow (sign-in, read from
several loops and threads, slide, sign-out) against the real drivers, and an
outage -- connections cut and refused, then the server back -- without a
restart. The outage goes through a TCP proxy the test switches off and on.
Skipped when a service is unreachable, failed under ``CI=true``
(``tests/_services.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from tests._services import auth_schema, redis_key_prefix, unique_name

from authsession import AuthConfig, AuthRuntime
from authsession._bridge import run_sync

from .conftest import COOKIE, MAX_AGE, UPDATE_AGE, USER, expires_for_age, row


class TcpProxy:
    """127.0.0.1:<port> forwarded to a server; ``down()`` cuts and refuses, ``up()`` restores."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=3)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            with self._lock:
                self._sockets.update((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[tuple[str, str]]:
    with auth_schema("authsession_db") as where:
        yield where


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[tuple[str, str]]:
    with redis_key_prefix("authsession_db") as where:
        yield where


def make_adapter(kind: str, request: pytest.FixtureRequest, port: int | None = None) -> Any:
    if kind == "postgres":
        from authsession.adapters import PostgresAdapter

        dsn, schema = request.getfixturevalue("pg_schema")
        if port is not None:
            dsn = _via(dsn, port)
        return PostgresAdapter(dsn, schema=schema, timeout=0.5, min_size=1, max_size=4)
    from authsession.adapters import RedisAdapter

    url, prefix = request.getfixturevalue("redis_prefix")
    if port is not None:
        url = _via(url, port)
    return RedisAdapter(url, prefix=prefix, timeout=0.5)


def upstream(kind: str, request: pytest.FixtureRequest) -> tuple[str, int]:
    url = (
        request.getfixturevalue("pg_schema")[0]
        if kind == "postgres"
        else (request.getfixturevalue("redis_prefix")[0])
    )
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (5432 if kind == "postgres" else 6379)


def runtime(adapter: Any, **options: Any) -> AuthRuntime:
    return AuthRuntime(
        AuthConfig(
            strategy="database", adapter=adapter, max_age=MAX_AGE, update_age=UPDATE_AGE, **options
        )
    )


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_full_flow_on_a_real_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path):
    adapter = make_adapter(kind, request)
    try:
        rt = runtime(adapter, cache=False)
        response: list[tuple[str, str]] = []
        token = rt.sign_in_sync(dict(USER), response)
        assert response and token in response[0][1]

        async def read() -> Any:
            return await rt.get_session({COOKIE: token})

        # Two application loops and a pool of threads, one adapter.
        assert asyncio.run(read()).user.email == USER["email"]
        assert asyncio.run(read()).user.email == USER["email"]
        with ThreadPoolExecutor(6) as pool:
            assert all(
                s.user.email == USER["email"]
                for s in pool.map(lambda _: rt.get_session_sync({COOKIE: token}), range(30))
            )

        # A due session slides on the real store.
        stored = row(adapter, token)
        user_id = run_sync(adapter.get_session_and_user(token))["user"]["id"]
        due = token + "-due"
        run_sync(
            adapter.create_session(
                session_token=due, user_id=user_id, expires=expires_for_age(UPDATE_AGE + 60)
            )
        )
        slid: list[tuple[str, str]] = []
        assert rt.get_session_sync(({COOKIE: due}, slid))
        assert row(adapter, due)["expires"].timestamp() > time.time() + MAX_AGE - 5
        assert slid and due in slid[0][1]
        assert row(adapter, token)["expires"] == stored["expires"]

        # Expired rows are pruned; sign-out deletes.
        gone = token + "-gone"
        run_sync(
            adapter.create_session(
                session_token=gone, user_id=user_id, expires=expires_for_age(MAX_AGE + 60)
            )
        )
        assert rt.get_session_sync({COOKIE: gone}) is None
        assert row(adapter, gone) is None
        asyncio.run(rt.sign_out({COOKIE: token}))
        assert row(adapter, token) is None
        assert rt.get_session_sync({COOKIE: token}) is None
    finally:
        run_sync(adapter.aclose())


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_outage_and_recovery_on_a_real_store(
    kind: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
):
    proxy = TcpProxy(*upstream(kind, request))
    adapter = make_adapter(kind, request, port=proxy.port)
    try:
        rt = runtime(adapter, cache=False)
        token = rt.sign_in_sync(dict(USER))
        assert rt.get_session_sync({COOKIE: token}) is not None

        caplog.clear()
        caplog.set_level(logging.DEBUG, logger="authsession")
        proxy.down()
        started = time.monotonic()
        # Each read fails within the adapter's timeout (the pool waits 0.5 s for a connection).
        assert rt.get_session_sync({COOKIE: token}) is None
        assert asyncio.run(rt.get_session({COOKIE: token})) is None
        assert rt.get_session_sync({COOKIE: token}) is None
        assert time.monotonic() - started < 15
        ours = [
            r for r in caplog.records if r.name == "authsession" and r.levelno >= logging.WARNING
        ]
        assert len(ours) == 1, [r.getMessage() for r in ours]
        assert not any(token in r.getMessage() for r in caplog.records)

        proxy.up()
        deadline = time.monotonic() + 20
        while rt.get_session_sync({COOKIE: token}) is None:  # the driver reconnects
            assert time.monotonic() < deadline, "no recovery after the server came back"
            time.sleep(0.2)
        assert asyncio.run(rt.get_session({COOKIE: token})) is not None
        assert any("answers again" in r.getMessage() for r in caplog.records)
    finally:
        run_sync(adapter.aclose())
        proxy.down()


# --------------------------------------------------------------------------- #
# An adapter around the application's own client or pool (client=/pool=)
# --------------------------------------------------------------------------- #


async def _own_client_flow(adapter: Any, app_traffic: Any) -> None:
    """Sign in, read concurrently with the app's own traffic on its client, update,
    sign out: all on the app's loop, where the client lives."""
    rt = runtime(adapter, cache=False)
    token = await rt.sign_in(dict(USER))
    results = await asyncio.gather(
        *(rt.get_session({COOKIE: token}) for _ in range(10)),
        app_traffic(),
        app_traffic(),
        return_exceptions=True,
    )
    assert all(s is not None and s.user.email == USER["email"] for s in results[:10]), results
    assert results[10:] == [None, None]
    assert await rt.update_session({COOKIE: token}, {"n": 1}) is not None
    await rt.sign_out({COOKIE: token})
    assert await rt.get_session({COOKIE: token}) is None
    assert rt.strategy.health.outages == 0


async def test_redis_adapter_with_the_apps_own_client(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
):
    """Before: every call ran on the bridge loop, where the app's client is foreign
    ("got Future attached to a different loop"), so nobody was ever signed in."""
    import redis.asyncio as aioredis

    from authsession.adapters import RedisAdapter

    url, prefix = request.getfixturevalue("redis_prefix")
    client = aioredis.Redis.from_url(url, decode_responses=True)
    await client.ping()  # the app uses its client on its own loop first
    adapter = RedisAdapter(client=client, prefix=prefix + "own:")

    async def app_traffic() -> None:
        for _ in range(20):
            await client.get(prefix + "own:unrelated")

    try:
        await _own_client_flow(adapter, app_traffic)
        assert adapter.bound_to_caller_loop
        # The sync API has only the bridge loop: refused, clearly.
        token = await runtime(adapter).sign_in(dict(USER))
        sync_rt = runtime(adapter, cache=False)
        assert await asyncio.to_thread(sync_rt.get_session_sync, {COOKIE: token}) is None
        assert "cannot use RedisAdapter built around a client" in caplog.text
    finally:
        await adapter.aclose()
        await client.aclose()


async def test_postgres_adapter_with_the_apps_own_pool(request: pytest.FixtureRequest):
    from psycopg_pool import AsyncConnectionPool

    from authsession.adapters import PostgresAdapter

    dsn, schema = request.getfixturevalue("pg_schema")
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(dsn, min_size=1, max_size=3, open=False)
    await pool.open(wait=True, timeout=10)
    adapter = PostgresAdapter(pool=pool, schema=schema)

    async def app_traffic() -> None:
        for _ in range(10):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")

    try:
        await _own_client_flow(adapter, app_traffic)
        assert adapter.bound_to_caller_loop
    finally:
        await adapter.aclose()
        await pool.close()


# --------------------------------------------------------------------------- #
# Crafted tokens: no session, no false outage, no store error
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_crafted_tokens_are_no_session_without_a_false_outage(
    kind: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
):
    """Before: ``%00`` (a NUL byte PostgreSQL rejects) and ``by-user-id:<id>``
    (naming Redis's per-user index, WRONGTYPE) failed in the store, logged an
    adapter outage and were never cached, so each request hit the store again."""
    adapter = make_adapter(kind, request)
    try:
        rt = runtime(adapter)
        good = rt.sign_in_sync({**USER, "id": "u-crafted"})
        user_id = run_sync(adapter.get_session_and_user(good))["user"]["id"]
        caplog.set_level(logging.INFO, logger="authsession")
        crafted = [
            f"{COOKIE}=%00evil",
            {COOKIE: f"by-user-id:{user_id}"},
            {COOKIE: good + ":x"},
            {COOKIE: "x" * 513},
        ]
        for cookie in crafted:
            assert rt.get_session_sync(cookie) is None
            assert rt.get_session_sync(cookie) is None  # the second from the cache
        assert rt.get_session_sync({COOKIE: good}) is not None
        assert rt.strategy.health.outages == 0
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        infos = [r.getMessage() for r in caplog.records if r.name == "authsession"]
        assert sum("no sign-in issues" in m for m in infos) == len(crafted)
        assert not any(good in m or "evil" in m for m in infos)
        # The adapters themselves answer "no such session" for such tokens too.
        assert run_sync(adapter.get_session_and_user("\x00evil")) is None
        assert run_sync(adapter.get_session_and_user(f"by-user-id:{user_id}")) is None
        run_sync(adapter.delete_session("\x00evil"))
    finally:
        run_sync(adapter.aclose())


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_account_linking_rules_on_a_real_store(kind: str, request: pytest.FixtureRequest):
    from authsession import AccountNotLinked

    adapter = make_adapter(kind, request)
    tag = unique_name("acct")
    email = f"{tag}@example.com"
    google = {"type": "oauth", "provider": "google", "providerAccountId": f"g-{tag}"}
    github = {"type": "oauth", "provider": "github", "providerAccountId": f"gh-{tag}"}
    try:
        alice = await adapter.create_user({"name": "Alice", "email": email})
        await adapter.link_account({**google, "userId": alice["id"]})
        strict, lenient = (
            runtime(adapter),
            runtime(adapter, allow_dangerous_email_account_linking=True),
        )
        with pytest.raises(AccountNotLinked):
            await strict.sign_in({"name": "Mallory", "email": email}, account=github)
        token = await strict.sign_in({"name": "?", "email": "x@example.com"}, account=google)
        assert (await adapter.get_session_and_user(token))["user"]["id"] == alice["id"]
        token = await lenient.sign_in({"name": "Alice", "email": email}, account=github)
        assert (await adapter.get_session_and_user(token))["user"]["id"] == alice["id"]
        linked = await adapter.get_user_by_account(
            provider="github", provider_account_id=github["providerAccountId"]
        )
        assert linked is not None and linked["id"] == alice["id"]
    finally:
        await adapter.aclose()
