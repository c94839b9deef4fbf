"""``timeout`` bounds a whole attempt, not each read: an upstream that trickles
its answer cannot hold a request (or a worker thread) much past it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from authsession import AuthRuntime, ProxyConfig
from authsession._proxy_strategy import AttemptTimeouts

BODY = b'{"user":{"name":"slow"},"expires":"2099-01-01T00:00:00.000Z"}'
DRIP = 0.2  # seconds between body bytes: the whole body would take ~12 s
TIMEOUT = 0.6
# Generous for a loaded machine, and far below the ~12 s a per-read timeout allows.
LIMIT = 4 * TIMEOUT


class TricklingUpstream:
    """Loopback HTTP/1.1: headers at once, then the body one byte per ``DRIP``.

    Records, per connection, how long it was kept open: the client hanging up
    is the only thing that stops the trickle.
    """

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.held_for: list[float] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        started = time.monotonic()
        with conn:
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    data = conn.recv(4096)
                    if not data:
                        return
                    request += data
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n" % len(BODY)
                )
                for byte in BODY:
                    if self._stop.wait(DRIP):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:  # the client hung up
                pass
            finally:
                self.held_for.append(time.monotonic() - started)

    def wait_for_hang_ups(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.held_for) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)
        self.listener.close()


@pytest.fixture
def upstream() -> Iterator[TricklingUpstream]:
    server = TricklingUpstream()
    yield server
    server.close()


@contextlib.contextmanager
def runtime(upstream: TricklingUpstream, **options: Any) -> Iterator[AuthRuntime]:
    config = ProxyConfig(
        upstream_url=f"http://127.0.0.1:{upstream.port}", timeout=TIMEOUT, retries=0, **options
    )
    made = AuthRuntime(config)
    try:
        yield made
    finally:
        made.strategy.close()  # type: ignore[union-attr]


def test_a_trickling_body_is_cut_off_at_the_timeout_sync(
    upstream: TricklingUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    with runtime(upstream) as rt:
        started = time.monotonic()
        assert rt.get_session_sync("authjs.session-token=abc") is None
        elapsed = time.monotonic() - started
    assert TIMEOUT * 0.9 <= elapsed < LIMIT, elapsed
    assert f"no complete response within {TIMEOUT:g}s" in caplog.text
    # A failure, not "no session": nothing cached, the breaker told.
    assert rt.cache_stats()["size"] == 0
    assert rt.strategy.health.consecutive_failures == 1  # type: ignore[union-attr]


def test_a_trickling_body_is_cut_off_at_the_timeout_async(upstream: TricklingUpstream) -> None:
    async def read(rt: AuthRuntime) -> tuple[Any, float]:
        started = time.monotonic()
        try:
            return await rt.get_session("authjs.session-token=abc"), time.monotonic() - started
        finally:
            await rt.strategy.aclose()  # type: ignore[union-attr]

    with runtime(upstream) as rt:
        session, elapsed = asyncio.run(read(rt))
    assert session is None
    assert TIMEOUT * 0.9 <= elapsed < LIMIT, elapsed


def test_a_sync_only_transport_on_the_async_path_stops_reading_too(
    upstream: TricklingUpstream,
) -> None:
    """The caller returns at the deadline, and the worker thread reading for it
    hangs up soon after instead of draining the trickle."""

    async def read(rt: AuthRuntime) -> tuple[Any, float]:
        started = time.monotonic()
        try:
            return await rt.get_session("authjs.session-token=abc"), time.monotonic() - started
        finally:
            await rt.strategy.aclose()  # type: ignore[union-attr]

    with runtime(upstream, transport=httpx.HTTPTransport()) as rt:
        session, elapsed = asyncio.run(read(rt))
        assert session is None
        assert elapsed < LIMIT, elapsed
        upstream.wait_for_hang_ups(1, timeout=LIMIT)
    assert upstream.held_for and max(upstream.held_for) < LIMIT, upstream.held_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_every_wait_httpx_is_given_is_capped_by_what_is_left_of_the_budget() -> None:
    clock = Clock()
    timeouts = AttemptTimeouts(2.0, clock)
    # httpcore reads these with .get as each phase starts.
    assert {k: timeouts.get(k) for k in ("connect", "write", "read", "pool")} == {
        "connect": 2.0,
        "write": 2.0,
        "read": 2.0,
        "pool": 2.0,
    }
    assert timeouts.get("other", "default") == "default"
    clock.now += 1.5
    assert timeouts.get("read") == pytest.approx(0.5)
    assert timeouts["connect"] == pytest.approx(0.5)
    timeouts.check()  # budget left: no error
    clock.now += 1.0
    # Spent: the shortest wait, never 0 (which would make sockets non-blocking).
    assert timeouts.get("read") == pytest.approx(0.001)
    with pytest.raises(httpx.ReadTimeout, match="within 2s"):
        timeouts.check()
