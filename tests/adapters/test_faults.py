"""Server trouble: unreachable servers raise AdapterUnavailable, and adapters recover.

* PostgreSQL / Redis on a closed port: a clear ``AdapterUnavailable`` naming
  the server (never the password), within the adapter's timeout.
* PostgreSQL "server restarted": the pool's backends are killed with
  ``pg_terminate_backend``; the next call reconnects and succeeds.
* Redis outage: a loopback TCP proxy in front of Redis is stopped (calls
  fail with ``AdapterUnavailable``) and started again on the same port (the
  next call succeeds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import pytest

from authsession.adapters import AdapterError, AdapterUnavailable, PostgresAdapter, RedisAdapter


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def soon() -> datetime:
    return datetime.now(timezone.utc) + timedelta(hours=1)


async def seed(adapter: Any) -> str:
    user = await adapter.create_user({"name": "Fault", "email": f"{uuid.uuid4().hex}@example.com"})
    token = f"fault-{uuid.uuid4().hex}"
    await adapter.create_session(session_token=token, user_id=user["id"], expires=soon())
    return token


# --------------------------------------------------------------------------- #
# PostgreSQL
# --------------------------------------------------------------------------- #


async def test_postgres_unreachable_is_a_clear_error() -> None:
    port = closed_port()
    adapter = PostgresAdapter(f"postgresql://alice:hunter2@127.0.0.1:{port}/authdb", timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(AdapterUnavailable) as info:
            await adapter.get_session_and_user("some-token")
    finally:
        await adapter.aclose()
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert f"127.0.0.1:{port}/authdb" in message and "get_session_and_user" in message
    assert "hunter2" not in message
    assert isinstance(info.value, ConnectionError)  # what generic handlers catch


@pytest.mark.parametrize("check", [True, False], ids=["checked", "unchecked"])
async def test_postgres_reconnects_after_its_connections_are_killed(pg_schema, check: bool) -> None:
    """The realistic "server restarted" case: every pooled connection dies at once."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    dsn, schema = pg_schema
    app_name = f"authsession-fault-{uuid.uuid4().hex[:8]}"
    adapter = PostgresAdapter(
        make_conninfo(dsn, application_name=app_name),
        schema=schema,
        min_size=2,
        check_connections=check,
    )
    try:
        token = await seed(adapter)
        assert await adapter.get_session_and_user(token) is not None
        with psycopg.connect(dsn, autocommit=True) as admin:
            pids = [
                row[0]
                for row in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app_name,)
                )
            ]
            assert pids, "the pool holds no connection to kill"
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                alive = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
                ).fetchone()
                if alive is not None and alive[0] == 0:
                    break
                await asyncio.sleep(0.05)
        failures = 0
        if check:
            # The pool checks a connection before lending it: the very next call works.
            found = await adapter.get_session_and_user(token)
        else:
            # Each dead pooled connection fails one call (clearly), then is replaced.
            for _ in range(len(pids) + 1):
                try:
                    found = await adapter.get_session_and_user(token)
                    break
                except AdapterUnavailable:
                    failures += 1
            assert 1 <= failures <= len(pids)
        assert found is not None and found["session"]["sessionToken"] == token
        assert await adapter.update_session(session_token=token, expires=soon()) is not None
    finally:
        await adapter.aclose()


async def test_postgres_rejects_a_non_integer_user_id_with_a_clear_error(pg_schema) -> None:
    dsn, schema = pg_schema
    adapter = PostgresAdapter(dsn, schema=schema)
    try:
        with pytest.raises(AdapterError) as info:
            await adapter.create_session(
                session_token="t-" + uuid.uuid4().hex, user_id="not-a-number", expires=soon()
            )
        assert not isinstance(info.value, AdapterUnavailable)
        assert "create_session" in str(info.value)
        # A lookup with such an id is simply no user, and the pool is still fine.
        assert await adapter.get_user("not-a-number") is None
        assert await adapter.get_session_and_user("missing") is None
    finally:
        await adapter.aclose()


# --------------------------------------------------------------------------- #
# Redis
# --------------------------------------------------------------------------- #


class TcpProxy:
    """A loopback TCP forwarder that can be stopped and restarted on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()


async def test_redis_unreachable_is_a_clear_error() -> None:
    port = closed_port()
    adapter = RedisAdapter(f"redis://alice:hunter2@127.0.0.1:{port}/0", timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(AdapterUnavailable) as info:
            await adapter.get_session_and_user("some-token")
    finally:
        await adapter.aclose()
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "get_session_and_user" in message
    assert "hunter2" not in message


async def test_redis_outage_then_recovery(redis_prefix) -> None:
    url, prefix = redis_prefix
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    port = await proxy.start()
    adapter = RedisAdapter(f"redis://127.0.0.1:{port}{parts.path}", prefix=prefix, timeout=2.0)
    try:
        token = await seed(adapter)
        assert await adapter.get_session_and_user(token) is not None
        await proxy.stop()
        with pytest.raises(AdapterUnavailable):
            await adapter.get_session_and_user(token)
        with pytest.raises(AdapterUnavailable):
            await adapter.update_session(session_token=token, expires=soon())
        await proxy.start()  # the same port again: "the server is back"
        found = await adapter.get_session_and_user(token)
        assert found is not None and found["session"]["sessionToken"] == token
    finally:
        await adapter.aclose()
        with contextlib.suppress(Exception):
            await proxy.stop()


async def test_postgres_down_concurrent_calls_share_one_connection_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the server down, N waiting calls wait for one attempt (one timeout), not
    N attempts in a row; then calls fail at once until the backoff is over."""
    from psycopg_pool import AsyncConnectionPool

    from authsession.adapters import _perloop

    clock = [1000.0]
    monkeypatch.setattr(_perloop, "_now", lambda: clock[0], raising=False)
    opens = []
    real_open = AsyncConnectionPool.open

    async def counted_open(self: Any, *args: Any, **kwargs: Any) -> None:
        opens.append(self.name)
        await real_open(self, *args, **kwargs)

    monkeypatch.setattr(AsyncConnectionPool, "open", counted_open)
    port = closed_port()
    adapter = PostgresAdapter(f"postgresql://alice:hunter2@127.0.0.1:{port}/authdb", timeout=0.5)
    try:
        results = await asyncio.gather(
            *(adapter.get_session_and_user(f"token-{i}") for i in range(5)),
            return_exceptions=True,
        )
        assert len(opens) == 1  # before: 5 opens, the k-th caller waiting k timeouts
        assert all(isinstance(r, AdapterUnavailable) for r in results), results
        # Inside the backoff: no new attempt, an immediate clear error.
        with pytest.raises(AdapterUnavailable) as info:
            await adapter.get_session_and_user("token-again")
        assert len(opens) == 1
        message = str(info.value)
        assert f"127.0.0.1:{port}/authdb" in message and "hunter2" not in message
        assert "not retrying for another 1.0s" in message
        # After it: one new attempt.
        clock[0] += 1.0
        with pytest.raises(AdapterUnavailable):
            await adapter.get_session_and_user("token-later")
        assert len(opens) == 2
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://postgres:S3CRET%zz@127.0.0.1:5432/test",  # a bare % in the password
        "postgresql://postgres:S3CRET@127.0.0.1:5432/test?sslmod=require",  # a typo
        "host=127.0.0.1 password='S3CRET",  # unterminated quote
        "S3CRET",  # not a DSN at all
    ],
    ids=["bad-percent", "bad-param", "unterminated", "garbage"],
)
async def test_a_malformed_dsn_is_refused_without_echoing_it(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    from authsession import ConfigurationError
    from authsession.adapters._postgres import init_database

    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigurationError) as info:
        PostgresAdapter(dsn, timeout=0.5)
    assert "PostgresAdapter" in str(info.value) and "S3CRET" not in str(info.value)
    # Not chained either: a traceback of it shows nothing of the DSN.
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(ConfigurationError) as info:
        init_database(dsn)  # what `authsession db init --dsn` runs
    assert "S3CRET" not in str(info.value)
    assert "S3CRET" not in caplog.text


async def test_a_malformed_dsn_once_leaked_its_password_into_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The reviewer's case, end to end: nothing the adapter or psycopg-pool logs
    (they log every failed attempt at WARNING) holds the password."""
    from authsession import ConfigurationError

    caplog.set_level(logging.DEBUG)
    try:
        adapter = PostgresAdapter(
            "postgresql://postgres:S3CRET%zz@127.0.0.1:5432/test", timeout=0.5
        )
    except ConfigurationError:
        pass
    else:  # before the fix: constructed, then every connection attempt logged the DSN
        try:
            with pytest.raises(AdapterError):
                await adapter.get_session_and_user("token")
        finally:
            await adapter.aclose()
        pytest.fail("a malformed DSN was accepted: " + caplog.text[-300:])
    assert "S3CRET" not in caplog.text
