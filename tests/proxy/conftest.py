"""Helpers for the proxy-mode tests: a scripted upstream behind ``httpx.MockTransport``.

``Upstream`` answers ``GET /api/auth/session`` from a queue of replies (a
status + JSON body, raw bytes, or an exception to raise), records every
request it saw, and counts them. It serves both the sync and the async client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from authsession import AuthRuntime
from authsession._proxy_config import ProxyConfig
from authsession._time import iso_ms

UPSTREAM = "https://upstream.test"  # never resolved: MockTransport answers
SESSION_URL = UPSTREAM + "/api/auth/session"
TOKEN = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0..token-value.tag"


def session_body(name: str = "alice", *, expires_in: float = 30 * 24 * 3600) -> dict[str, Any]:
    return {
        "user": {"name": name, "email": f"{name}@example.com", "image": None},
        "expires": iso_ms(time.time() + expires_in),
    }


Reply = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]


class Upstream:
    """A scripted upstream; ``default`` answers once the queue is empty."""

    def __init__(self, default: Reply | None = None) -> None:
        self.queue: list[Reply] = []
        self.default: Reply = default if default is not None else ok()
        self.requests: list[httpx.Request] = []
        self.delay = 0.0
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return len(self.requests)

    def push(self, *replies: Reply) -> Upstream:
        self.queue.extend(replies)
        return self

    def _next(self, request: httpx.Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.queue.pop(0) if self.queue else self.default

    def _answer(self, reply: Reply, request: httpx.Request) -> httpx.Response:
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, httpx.Response):
            # A fresh copy each time: a Response can be read once.
            return httpx.Response(
                reply.status_code, headers=reply.headers, content=reply.content, request=request
            )
        return reply(request)

    def handler(self, request: httpx.Request) -> httpx.Response:
        reply = self._next(request)
        if self.delay:
            time.sleep(self.delay)
        return self._answer(reply, request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        import asyncio

        reply = self._next(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self._answer(reply, request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.async_handler)

    def cookie_headers(self) -> list[str | None]:
        return [r.headers.get("cookie") for r in self.requests]


def ok(body: Any = None, *, status: int = 200, set_cookie: tuple[str, ...] = ()) -> httpx.Response:
    headers = [("content-type", "application/json")]
    headers += [("set-cookie", value) for value in set_cookie]
    import json

    content = json.dumps(session_body() if body is None else body).encode()
    return httpx.Response(status, headers=headers, content=content)


def raw(status: int, content: bytes, content_type: str = "text/html") -> httpx.Response:
    return httpx.Response(status, headers=[("content-type", content_type)], content=content)


@pytest.fixture
def make_runtime() -> Iterator[Callable[..., AuthRuntime]]:
    """Build proxy runtimes against a transport; their clients are closed afterwards."""
    made: list[AuthRuntime] = []

    def make(transport: Any, **options: Any) -> AuthRuntime:
        options.setdefault("backoff_base", 0.001)
        options.setdefault("backoff_max", 0.005)
        runtime = AuthRuntime(ProxyConfig(upstream_url=UPSTREAM, transport=transport, **options))
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.strategy.close()  # type: ignore[union-attr]
