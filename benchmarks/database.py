"""The database strategy: resolve latency per adapter, and adapter round trips with the cache.

    .venv/bin/python benchmarks/database.py [--quick] [--rounds N]

Table 1, per adapter (Memory, SQLite file, PostgreSQL, Redis; a service that
cannot be reached is listed as skipped): microseconds per
``get_session``/``get_session_sync`` with the cache off (every call asks the
store) and on (a hit), and the adapter's own ``get_session_and_user`` awaited
directly on the caller's loop, so the price of running adapter I/O on the
bridge loop shows. Cases run interleaved in rounds and each number is the
median over rounds; ratios are taken within a round, then the median.

Table 2: 1,000 requests spread over 100 distinct sessions (10 of them due for
a slide), from 8 threads and from 8 asyncio tasks, with the cache on. The
adapter is wrapped to count calls; the target is round trips <= distinct
sessions + slides.

PostgreSQL and Redis come from AUTHSESSION_TEST_POSTGRES_DSN /
AUTHSESSION_TEST_REDIS_URL (defaults as in the tests); each run uses its own
schema / key prefix and removes it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from authsession import AuthConfig, AuthRuntime
from authsession._bridge import run_sync
from authsession._database_strategy import adapter_call
from authsession.adapters import MemoryAdapter, SQLiteAdapter

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "database.md"
COOKIE = "authjs.session-token"
MAX_AGE = 30 * 24 * 3600
UPDATE_AGE = 24 * 3600
PG_DSN = (
    os.environ.get("AUTHSESSION_TEST_POSTGRES_DSN") or "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AUTHSESSION_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


# --------------------------------------------------------------------------- #
# Adapters
# --------------------------------------------------------------------------- #


class Counting:
    """Counts adapter calls by method (thread-safe); everything else passes through."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if name.startswith("_") or not callable(method):
            return method

        async def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
            return await method(*args, **kwargs)

        return counted


@contextlib.contextmanager
def adapters(tmp: Path) -> Iterator[list[tuple[str, Any, str | None]]]:
    """(name, adapter or None, reason skipped) for each adapter; cleans up afterwards."""
    found: list[tuple[str, Any, str | None]] = [
        ("Memory", MemoryAdapter(), None),
        ("SQLite (file)", SQLiteAdapter(tmp / "bench.db"), None),
    ]
    cleanups: list[Callable[[], None]] = []
    schema = f"authsession_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        import psycopg

        from authsession.adapters import PostgresAdapter
        from authsession.adapters._postgres import render_schema

        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute(render_schema(schema))

        def drop_schema() -> None:
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

        cleanups.append(drop_schema)
        found.append(("PostgreSQL", PostgresAdapter(PG_DSN, schema=schema), None))
    except Exception as exc:
        found.append(("PostgreSQL", None, f"{type(exc).__name__}: {exc}".splitlines()[0]))
    prefix = f"authsession_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}:"
    try:
        import redis

        from authsession.adapters import RedisAdapter

        probe = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        probe.ping()

        def drop_keys() -> None:
            keys = list(probe.scan_iter(match=prefix + "*", count=1000))
            if keys:
                probe.delete(*keys)
            probe.close()

        cleanups.append(drop_keys)
        found.append(("Redis", RedisAdapter(REDIS_URL, prefix=prefix), None))
    except Exception as exc:
        found.append(("Redis", None, f"{type(exc).__name__}: {exc}".splitlines()[0]))
    try:
        yield found
    finally:
        for _, adapter, _ in found:
            if adapter is not None:
                with contextlib.suppress(Exception):
                    run_sync(adapter.aclose())
        for cleanup in cleanups:
            with contextlib.suppress(Exception):
                cleanup()


def seed(adapter: Any, count: int, due: int) -> list[str]:
    """``count`` sessions of distinct users; the first ``due`` are due for a slide."""
    now = datetime.now(timezone.utc)
    tokens = []
    for i in range(count):
        user = run_sync(adapter.create_user({"name": f"User {i}", "email": f"u{i}@example.com"}))
        token = f"bench-{uuid.uuid4().hex}"
        age = UPDATE_AGE + 3600 if i < due else 60
        run_sync(
            adapter.create_session(
                session_token=token,
                user_id=user["id"],
                expires=now + timedelta(seconds=MAX_AGE - age),
            )
        )
        tokens.append(token)
    return tokens


def runtime(adapter: Any, cache: bool) -> AuthRuntime:
    return AuthRuntime(
        AuthConfig(
            strategy="database",
            adapter=adapter,
            max_age=MAX_AGE,
            update_age=UPDATE_AGE,
            cache=None if cache else False,
        )
    )


# --------------------------------------------------------------------------- #
# Latency
# --------------------------------------------------------------------------- #

Batch = Callable[[int], int]  # runs n operations, returns elapsed ns


def sync_batch(op: Callable[[], object]) -> Batch:
    def batch(n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            op()
        return time.perf_counter_ns() - start

    return batch


def async_batch(loop: asyncio.AbstractEventLoop, op: Callable[[], Any]) -> Batch:
    async def run(n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            await op()
        return time.perf_counter_ns() - start

    return lambda n: loop.run_until_complete(run(n))


def bridge_batch(op: Callable[[], Any]) -> Batch:
    """``op`` awaited n times inside the bridge loop: the adapter alone, no thread hop."""

    async def run(n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            await op()
        return time.perf_counter_ns() - start

    return lambda n: run_sync(run(n))


async def _noop() -> None:
    return None


def hop_row(loop_rounds: int, seconds: float) -> str:
    """What one trip to the bridge loop and back costs, with no I/O at all."""
    loop = asyncio.new_event_loop()
    try:
        s = measure(
            {
                "sync": sync_batch(lambda: run_sync(_noop())),
                "async": async_batch(loop, lambda: adapter_call(_noop)),
            },
            loop_rounds,
            seconds,
        )
    finally:
        loop.close()
    return (
        f"| (bridge hop, no I/O) | 0 | {statistics.median(s['sync']):.1f} "
        f"| {statistics.median(s['async']):.1f} | | | | |"
    )


def calibrate(batch: Batch, seconds: float) -> int:
    n = 1
    while True:
        elapsed = batch(n)
        if elapsed >= seconds * 1e9 / 4 or n >= 1 << 20:
            return max(1, int(n * seconds * 1e9 / max(elapsed, 1)))
        n *= 4


def measure(cases: dict[str, Batch], rounds: int, seconds: float) -> dict[str, list[float]]:
    """µs/op per case per round, cases interleaved in a shuffled order each round."""
    sizes = {name: calibrate(batch, seconds) for name, batch in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases)
    gc.disable()
    try:
        for _ in range(rounds):
            random.shuffle(order)
            for name in order:
                n = sizes[name]
                samples[name].append(cases[name](n) / n / 1000)
    finally:
        gc.enable()
    return samples


def ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def latency_rows(name: str, adapter: Any, rounds: int, seconds: float) -> list[str]:
    (token,) = seed(adapter, 1, 0)
    cold, warm = runtime(adapter, cache=False), runtime(adapter, cache=True)
    source = {COOKIE: token}
    loop = asyncio.new_event_loop()
    try:
        assert cold.get_session_sync(source) is not None
        assert loop.run_until_complete(warm.get_session(source)) is not None
        cases = {
            "direct": bridge_batch(lambda: adapter.get_session_and_user(token)),
            "sync": sync_batch(lambda: cold.get_session_sync(source)),
            "async": async_batch(loop, lambda: cold.get_session(source)),
            "sync_hit": sync_batch(lambda: warm.get_session_sync(source)),
            "async_hit": async_batch(loop, lambda: warm.get_session(source)),
        }
        s = measure(cases, rounds, seconds)
        with contextlib.suppress(Exception):
            loop.run_until_complete(adapter.aclose())  # the pool opened on this loop
    finally:
        loop.close()
    med = {k: statistics.median(v) for k, v in s.items()}
    extra = statistics.median(a - b for a, b in zip(s["sync"], s["direct"], strict=True))
    return [
        f"| {name} | {med['direct']:.1f} | {med['sync']:.1f} | {med['async']:.1f} "
        f"| {extra:+.1f} | {med['sync_hit']:.2f} | {med['async_hit']:.2f} "
        f"| {ratio(s['sync'], s['sync_hit']):.0f}x |"
    ]


# --------------------------------------------------------------------------- #
# Round trips
# --------------------------------------------------------------------------- #


def round_trip_rows(name: str, adapter: Any, requests: int, distinct: int, due: int) -> list[str]:
    rows = []
    for mode in ("threads", "tasks"):
        counting = Counting(adapter)
        tokens = seed(adapter, distinct, due)
        rt = runtime(counting, cache=True)
        picks = [tokens[i % distinct] for i in range(requests)]
        random.Random(7).shuffle(picks)
        if mode == "threads":
            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(lambda t, rt=rt: rt.get_session_sync({COOKIE: t}), picks))
        else:

            async def main(rt: AuthRuntime = rt, picks: list[str] = picks) -> list[Any]:
                sem = asyncio.Semaphore(8)

                async def one(token: str) -> Any:
                    async with sem:
                        return await rt.get_session({COOKIE: token})

                return await asyncio.gather(*(one(t) for t in picks))

            results = asyncio.run(main())
        assert all(r is not None for r in results), "a seeded session did not resolve"
        calls = counting.calls
        total = sum(calls.values())
        target = distinct + due
        rows.append(
            f"| {name} | {mode} | {requests} | {distinct} | {due} | "
            f"{calls['get_session_and_user']} | {calls['update_session']} | {total} | "
            f"{target} | {'yes' if total <= target else 'NO'} |"
        )
    return rows


# --------------------------------------------------------------------------- #


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few short rounds (a smoke run)")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    seconds = 0.03 if args.quick else 0.15

    latency = [
        "| adapter | adapter alone, µs | sync, µs | async, µs | sync - alone, µs "
        "| sync hit, µs | async hit, µs | uncached / hit (sync) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        hop_row(rounds, seconds),
    ]
    trips = [
        "| adapter | callers | requests | distinct sessions | due for a slide "
        "| get_session_and_user | update_session | round trips | target | met |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    skipped: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, adapters(Path(tmp)) as found:
        for name, adapter, reason in found:
            if adapter is None:
                skipped.append(f"- {name}: skipped ({reason})")
                continue
            print(f"{name}: latency ...", file=sys.stderr, flush=True)
            latency += latency_rows(name, adapter, rounds, seconds)
            print(f"{name}: round trips ...", file=sys.stderr, flush=True)
            trips += round_trip_rows(name, adapter, 1000, 100, 10)

    machine = f"{platform.python_implementation()} {platform.python_version()}, " + (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )
    report = "\n".join(
        [
            "# Database strategy",
            "",
            f"`python benchmarks/database.py{' --quick' if args.quick else ''}` -- {machine}; "
            f"{rounds} interleaved rounds, medians.",
            "",
            "## Resolve latency (µs per call)",
            "",
            "*adapter alone*: `await adapter.get_session_and_user(token)` in a loop running "
            "on the bridge loop (no thread hop). *sync* / *async*: `get_session_sync` from the "
            "main thread / `await get_session` on an application loop, cache off (lookup, "
            "expiry check, default session, with adapter I/O on the bridge loop). "
            "*sync - alone*: the strategy's price over the bare adapter call, the thread hop "
            "included (the first row measures a hop alone). *hit*: the same calls with the "
            "cache on. The machine is shared, so absolute numbers drift between runs; "
            "compare within a row.",
            "",
            *latency,
            "",
            "## Adapter round trips with the cache on",
            "",
            "1,000 requests over 100 distinct sessions, 10 of them due for a slide "
            "(one `update_session` each), from 8 threads or 8 concurrent tasks. "
            "Target: round trips <= distinct sessions + slides.",
            "",
            *trips,
            "",
            *skipped,
            "",
        ]
    )
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report)
    print(f"written to {RESULTS.relative_to(ROOT.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
