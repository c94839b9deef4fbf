"""Proxy mode: latency of a proxied resolve, and upstream calls with the cache.

    .venv/bin/python benchmarks/proxy.py [--quick] [--rounds N]

Runs a real Auth.js (``Auth()`` from ``@auth/core``, the interop suite's
``authjs_server.mjs``) on loopback and signs users in through its Credentials
provider.

Table 1: microseconds per resolve. *upstream alone* is a bare
``httpx.Client.get`` (sync row) or ``httpx.AsyncClient.get`` (async row) of
``/api/auth/session`` with the same cookie: what any proxy must pay.
*uncached* is ``get_session_sync`` / ``await get_session`` with the cache off
(every call goes upstream); *hit* is the same call with the cache on. Cases
run interleaved in rounds; each number is the median over rounds, and ratios
are taken within a round, then the median.

Table 2: 1,000 requests spread over 100 signed-in users (random order), from 8
threads and from 8 asyncio tasks; the transport counts upstream requests.
"follows Set-Cookie" clients store the session cookie proxy mode relays (Auth.js
re-issues it on every session call), as a browser would.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))

from _common import (  # noqa: E402
    Case,
    format_us,
    machine_summary,
    markdown_table,
    paired_ratio,
    python_batch,
    run_interleaved,
    write_markdown,
)

from authsession import AuthRuntime, ProxyConfig  # noqa: E402
from interop._harness import (  # noqa: E402
    SECRET,
    AuthJsServer,
    NodeUnavailable,
    _prepare_node_modules,
    apply_set_cookies,
    cookie_header,
    sign_in,
)

RESULTS = ROOT / "results" / "proxy.md"
REQUESTS = 1000
USERS = 100
WORKERS = 8


class CountingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Real HTTP that counts upstream requests (one async pool per loop)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        self._sync = httpx.HTTPTransport()
        self._async: dict[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.calls += 1
        return self._sync.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        loop = asyncio.get_running_loop()
        with self._lock:
            self.calls += 1
            inner = self._async.setdefault(loop, httpx.AsyncHTTPTransport())
        return await inner.handle_async_request(request)


def runtime(base_url: str, transport: Any = None, **cache: Any) -> AuthRuntime:
    return AuthRuntime(ProxyConfig(upstream_url=base_url, transport=transport, cache=cache or None))


def async_batch(loop: asyncio.AbstractEventLoop, op: Callable[[], Any]) -> Callable[[int], int]:
    """A batch timer for an async zero-argument callable, on one long-lived loop."""

    async def many(n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            await op()
        return time.perf_counter_ns() - start

    return lambda n: loop.run_until_complete(many(n))


def latency_table(base_url: str, cookie: str, rounds: int, batch_seconds: float) -> str:
    loop = asyncio.new_event_loop()
    direct = httpx.Client()
    uncached = runtime(base_url, enabled=False)
    cached = runtime(base_url)
    assert uncached.get_session_sync(cookie) is not None
    assert cached.get_session_sync(cookie) is not None

    direct_async = httpx.AsyncClient()
    url = base_url + "/api/auth/session"

    def fetch_direct() -> None:
        response = direct.get(url, headers={"cookie": cookie})
        direct.cookies.clear()
        assert response.status_code == 200

    async def fetch_direct_async() -> None:
        response = await direct_async.get(url, headers={"cookie": cookie})
        direct_async.cookies.clear()
        assert response.status_code == 200

    cases = {
        "sync alone": Case("sync alone", python_batch(fetch_direct)),
        "async alone": Case("async alone", async_batch(loop, fetch_direct_async)),
        "sync uncached": Case(
            "sync uncached", python_batch(lambda: uncached.get_session_sync(cookie))
        ),
        "async uncached": Case(
            "async uncached", async_batch(loop, lambda: uncached.get_session(cookie))
        ),
        "sync hit": Case("sync hit", python_batch(lambda: cached.get_session_sync(cookie))),
        "async hit": Case("async hit", async_batch(loop, lambda: cached.get_session(cookie))),
    }
    run_interleaved(
        list(cases.values()),
        rounds=rounds,
        batch_seconds=batch_seconds,
        progress=lambda i, n: print(f"  round {i}/{n}", file=sys.stderr),
    )
    rows = []
    for kind in ("sync", "async"):
        alone = cases[f"{kind} alone"]
        miss, hit = cases[f"{kind} uncached"], cases[f"{kind} hit"]
        rows.append(
            [
                kind,
                format_us(alone.median),
                format_us(miss.median),
                f"{paired_ratio(miss, alone):.2f}x",
                format_us(hit.median),
                f"{paired_ratio(miss, hit):,.0f}x",
            ]
        )
    loop.run_until_complete(uncached.strategy.aclose())  # type: ignore[union-attr]
    loop.run_until_complete(cached.strategy.aclose())  # type: ignore[union-attr]
    loop.run_until_complete(direct_async.aclose())
    loop.close()
    direct.close()
    return markdown_table(
        [
            "path",
            "upstream alone, µs",
            "proxied uncached, µs",
            "uncached / alone",
            "proxied hit, µs",
            "uncached / hit",
        ],
        rows,
        "lrrrrr",
    )


def calls_row(
    base_url: str, jars: list[dict[str, str]], callers: str, follow: bool, cache: bool
) -> list[str]:
    transport = CountingTransport()
    proxy = runtime(base_url, transport, enabled=cache)
    jars = [dict(jar) for jar in jars]  # each run's clients start from the sign-in cookies
    order = [i % len(jars) for i in range(REQUESTS)]
    random.Random(7).shuffle(order)
    locks = [threading.Lock() for _ in jars]
    misses = 0

    def request_sync(index: int) -> None:
        nonlocal misses
        with locks[index]:
            cookie = cookie_header(jars[index])
        headers: list[tuple[str, str]] = []
        session = proxy.get_session_sync((cookie, headers))
        if session is None:
            misses += 1
        if follow and headers:
            with locks[index]:
                apply_set_cookies(jars[index], [value for _, value in headers])

    async def request_async(index: int) -> None:
        nonlocal misses
        cookie = cookie_header(jars[index])
        headers: list[tuple[str, str]] = []
        if await proxy.get_session((cookie, headers)) is None:
            misses += 1
        if follow and headers:
            apply_set_cookies(jars[index], [value for _, value in headers])

    if callers == "threads":
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(request_sync, order))
    else:

        async def run_tasks() -> None:
            queue = list(order)

            async def worker() -> None:
                while queue:
                    await request_async(queue.pop())

            await asyncio.gather(*(worker() for _ in range(WORKERS)))
            await proxy.strategy.aclose()  # type: ignore[union-attr]

        asyncio.run(run_tasks())
    proxy.strategy.close()  # type: ignore[union-attr]
    if misses:
        raise SystemExit(f"{misses} requests read as signed out; the upstream misbehaved")
    return [
        callers,
        "on" if cache else "off",
        "yes" if follow else "no",
        str(REQUESTS),
        str(len(jars)),
        str(transport.calls),
        f"{transport.calls / REQUESTS * 1000:,.0f}",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 15)
    batch_seconds = 0.05 if args.quick else 0.2
    try:
        _prepare_node_modules()
    except NodeUnavailable as exc:
        print(f"proxy benchmark skipped: {exc}", file=sys.stderr)
        return 0
    with AuthJsServer(SECRET) as server:
        print(f"Auth.js on {server.base_url}; signing in {USERS} users", file=sys.stderr)
        jars = [sign_in(server.base_url, f"bench{i}").cookies for i in range(USERS)]
        latency = latency_table(server.base_url, cookie_header(jars[0]), rounds, batch_seconds)
        rows = [
            calls_row(server.base_url, jars, "threads", follow=False, cache=True),
            calls_row(server.base_url, jars, "tasks", follow=False, cache=True),
            calls_row(server.base_url, jars, "threads", follow=True, cache=True),
            calls_row(server.base_url, jars, "tasks", follow=True, cache=True),
            calls_row(server.base_url, jars, "threads", follow=False, cache=False),
        ]
    calls = markdown_table(
        [
            "callers",
            "cache",
            "follows Set-Cookie",
            "requests",
            "distinct cookies",
            "upstream calls",
            "per 1,000 requests",
        ],
        rows,
        "lllrrrr",
    )
    python = f"CPython {platform.python_version()}"
    sections = [
        f"`python benchmarks/proxy.py{' --quick' if args.quick else ''}` -- {python}, "
        f"{machine_summary()}; {rounds} interleaved rounds, medians.",
        "## Resolve latency (µs per call)\n\n"
        "*upstream alone*: a bare `httpx.Client.get` (sync row) or `httpx.AsyncClient.get` "
        "(async row) of the real Auth.js `/api/auth/session` on loopback; Auth.js's JWE "
        "decrypt + re-encrypt dominates, and httpx's async client costs more per call than "
        "its sync one. *proxied uncached*: "
        "`get_session_sync` / `await get_session` with the cache off, so every call goes "
        "upstream. *hit*: the same call answered from the cache. The machine is shared; "
        "compare within a row.\n\n" + latency,
        "## Upstream calls with the cache on\n\n"
        f"{REQUESTS:,} requests over {USERS} signed-in users in random order, from "
        f"{WORKERS} threads (sync API) or {WORKERS} asyncio tasks. Clients that follow "
        "Set-Cookie store the re-issued cookie proxy mode relays; the re-issued token is "
        "seeded into the cache, so they cost no extra calls. Target with the cache on: one "
        "call per distinct cookie. With the cache off, single flight still merges "
        "concurrent requests for the same cookie.\n\n" + calls,
    ]
    write_markdown(RESULTS, "Proxy mode", sections)
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
