"""What does the session cache cost, save and hold, and how fast do invalidations travel?

Four measurements, one run:

1. Cached resolve cost, in interleaved rounds (median µs/op): a plain dict
   lookup with a 32-byte key (the floor, for scale); ``SessionCache.get`` on
   a hit; the cache's whole share of a request (``token_key`` of the ~630
   character token + ``get``); and the full ``get_session_sync`` on a cookie
   mapping, cached and with the cache off.
2. Resolutions for 1,000 concurrent requests on one token: asyncio tasks
   whose ``session`` callback awaits (as a database or an HTTP call would, so
   they truly overlap), and 100 threads x 10 requests.
3. Memory held by 100,000 cached default sessions (Auth.js's default
   session: name, email, image, expires), resolved through the jwt strategy:
   tracemalloc's count of live Python allocations, and the process RSS delta.
4. Invalidation bus propagation: a second process subscribes to the bus; this
   one signs out 200 sessions one after another, and the table gives the time
   from calling ``sign_out_sync`` to the other process's cache holding the
   denial (median, p90, p99, max). Skipped when Redis is unreachable.

    .venv/bin/python benchmarks/cache.py           # ~1-2 minutes, writes results/cache.md
    .venv/bin/python benchmarks/cache.py --quick   # a few seconds, prints only
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

from _common import (
    Case,
    format_us,
    machine_summary,
    markdown_table,
    paired_ratio,
    python_batch,
    rounds_for,
    run_interleaved,
    write_markdown,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from authsession import AuthConfig, AuthRuntime, jwt  # noqa: E402
from authsession._cache import token_key  # noqa: E402
from authsession._inputs import to_view  # noqa: E402
from authsession._tokens import find_token  # noqa: E402

SECRET = "benchmark-secret-0123456789abcdef0123456789abcdef"
NAME = "authjs.session-token"
CLAIMS = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "picture": "https://example.com/ada.png",
    "sub": "42",
}
REDIS_URL = os.environ.get("AUTHSESSION_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


def cookies_for(token: str) -> dict[str, str]:
    # What a browser sends an Auth.js app: the session plus CSRF and callback cookies.
    return {
        NAME: token,
        "authjs.csrf-token": "f" * 64 + "%7C" + "e" * 64,
        "authjs.callback-url": "http%3A%2F%2Flocalhost%3A3000",
    }


# -- 1. cached resolve cost -------------------------------------------------------


def cost_section(quick: bool) -> tuple[str, dict[str, float]]:
    token = jwt.encode(CLAIMS, SECRET, NAME)
    cookies = cookies_for(token)
    cached = AuthRuntime(AuthConfig(secret=SECRET))
    uncached = AuthRuntime(AuthConfig(secret=SECRET, cache=False))
    assert cached.get_session_sync(cookies) is not None
    key = token_key(token)
    plain = {key: cached.cache.get(key)}
    cache = cached.cache

    def layer() -> object:
        return cache.get(token_key(token), NAME)

    cases = [
        Case("plain dict lookup (32-byte key)", python_batch(lambda: plain.get(key))),
        Case("SessionCache.get, hit", python_batch(lambda: cache.get(key, NAME))),
        Case("cache's share: token_key(token) + get", python_batch(layer)),
        Case(
            "reading the request: to_view + find_token",
            python_batch(lambda: find_token(to_view(cookies), cached.candidates)),
        ),
        Case(
            "get_session_sync(cookies), cached",
            python_batch(lambda: cached.get_session_sync(cookies)),
        ),
        Case(
            "get_session_sync(cookies), cache off",
            python_batch(lambda: uncached.get_session_sync(cookies)),
        ),
    ]
    batch = 0.02 if quick else 0.05
    rounds = 5 if quick else rounds_for(25, len(cases), batch)
    run_interleaved(cases, rounds=rounds, batch_seconds=batch)
    floor = cases[0]
    rows = [
        [c.name, format_us(c.median), f"{c.spread:.0%}", f"{paired_ratio(c, floor):.1f}x"]
        for c in cases
    ]
    table = markdown_table(["case", "µs/op (median)", "IQR", "x dict lookup"], rows, "lrrr")
    measured = {
        "layer": cases[2].median,
        "cached": cases[4].median,
        "saving": paired_ratio(cases[5], cases[4]),
    }
    text = (
        f"## 1. Cached resolve cost\n\n{rounds} interleaved rounds. The token is "
        f"{len(token)} characters; the cookie mapping also holds the CSRF and "
        "callback-url cookies a browser sends.\n\n" + table + "\n\n"
        f"A cached request costs {measured['saving']:.1f}x less than one with the cache "
        "off. Of a cached request, the cache's own share is the third row; most of "
        "the rest is reading the request (the fourth row: adapting the input and "
        "finding the session cookie, chunks and Bearer fallback)."
    )
    return text, measured


# -- 2. single flight -------------------------------------------------------------------


def single_flight_section() -> tuple[str, dict[str, int]]:
    async def lookup(session):  # stands in for an awaited database or HTTP call
        await asyncio.sleep(0.01)
        return session

    rt = AuthRuntime(AuthConfig(secret=SECRET, callbacks={"session": lookup}))
    calls: list[int] = []
    original = rt.strategy.resolve

    def counted(found):
        calls.append(1)
        return original(found)

    rt.strategy.resolve = counted  # type: ignore[method-assign]
    cookies = cookies_for(jwt.encode(CLAIMS, SECRET, NAME))

    async def burst():
        return await asyncio.gather(*(rt.get_session(cookies) for _ in range(1000)))

    results = asyncio.run(burst())
    assert all(r is not None for r in results)
    task_stats = rt.cache_stats()
    task_calls = len(calls)

    def slow(session):
        time.sleep(0.01)
        return session

    rt2 = AuthRuntime(AuthConfig(secret=SECRET, callbacks={"session": slow}))
    calls2: list[int] = []
    original2 = rt2.strategy.resolve

    def counted2(found):
        calls2.append(1)
        return original2(found)

    rt2.strategy.resolve = counted2  # type: ignore[method-assign]
    cookies2 = cookies_for(jwt.encode(CLAIMS, SECRET, NAME))
    barrier = threading.Barrier(100)
    served: list[object] = []

    def worker():
        barrier.wait()
        for _ in range(10):
            served.append(rt2.get_session_sync(cookies2))

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(served) == 1000 and all(s is not None for s in served)
    thread_stats = rt2.cache_stats()
    rows = [
        [
            "1,000 asyncio tasks at once",
            str(task_calls),
            str(task_stats["coalesced"]),
            str(task_stats["hits"]),
        ],
        [
            "100 threads x 10 requests",
            str(len(calls2)),
            str(thread_stats["coalesced"]),
            str(thread_stats["hits"]),
        ],
    ]
    table = markdown_table(
        ["1,000 requests on one token", "strategy calls", "waited (coalesced)", "cache hits"],
        rows,
        "lrrr",
    )
    text = (
        "## 2. Single flight\n\nThe `session` callback takes 10 ms (awaited by the "
        "tasks, slept by the threads), so the requests overlap the one resolution.\n\n" + table
    )
    return text, {"tasks": task_calls, "threads": len(calls2)}


# -- 3. memory -------------------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_section(quick: bool) -> tuple[str, dict[str, float]]:
    count = 10_000 if quick else 100_000
    tokens = [
        jwt.encode({**CLAIMS, "email": f"user{i}@example.com", "sub": str(i)}, SECRET, NAME)
        for i in range(count)
    ]
    views = [{NAME: token} for token in tokens]

    def fill() -> AuthRuntime:
        rt = AuthRuntime(AuthConfig(secret=SECRET, cache={"max_entries": count}))
        for view in views:
            rt.get_session_sync(view)
        assert rt.cache_stats()["size"] == count
        return rt

    # Two passes: tracemalloc keeps a record per allocation, which would
    # itself swell the RSS, so the RSS pass runs without it.
    gc.collect()
    rss_before = rss_bytes()
    held = fill()
    gc.collect()
    rss_delta = rss_bytes() - rss_before
    del held
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    held = fill()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    traced = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del held
    scale = 100_000 / count
    traced_mb = traced * scale / 2**20
    rss_mb = rss_delta * scale / 2**20
    note = "" if count == 100_000 else f" (measured with {count:,}, scaled x{scale:g})"
    rows = [
        ["live Python allocations (tracemalloc)", f"{traced_mb:.1f}", f"{traced / count:,.0f}"],
        ["process RSS delta", f"{rss_mb:.1f}", f"{rss_delta / count:,.0f}"],
    ]
    table = markdown_table(["100,000 cached sessions", "MB", "bytes/session"], rows, "lrr")
    text = (
        f"## 3. Memory{note}\n\nEach entry: the 32-byte key, the `Entry` (deadline, "
        "cookie name, no writes), the read-only `Session` with its `user` dict "
        "(name, email, image) and `expires` string, and the LRU's link. The RSS "
        "delta (a separate pass, without tracemalloc) also counts allocator slack.\n\n" + table
    )
    return text, {"traced_mb": traced_mb, "rss_mb": rss_mb}


# -- 4. bus propagation ----------------------------------------------------------------


def listener(url: str, channel: str) -> None:
    """The other process: report when each denial lands in its cache."""
    rt = AuthRuntime(AuthConfig(secret=SECRET, cache={"bus": url, "bus_channel": channel}))
    revoke = rt.cache.revoke

    def observed(key: bytes, until: float) -> None:
        revoke(key, until)
        print(f"{key.hex()} {time.monotonic()}", flush=True)  # system-wide clock on Linux

    rt.cache.revoke = observed  # type: ignore[method-assign]
    if not rt.invalidation.bus.connected.wait(10):
        print("unreachable", flush=True)
        return
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes the pipe


def redis_reachable(url: str) -> str | None:
    try:
        import redis
    except ImportError:
        return "redis is not installed (pip install 'authsession[redis]')"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"Redis at {url} unreachable: {exc}"
    return None


def bus_section(quick: bool) -> tuple[str, dict[str, float] | None]:
    count = 30 if quick else 200
    why = redis_reachable(REDIS_URL)
    if why is not None:
        return f"## 4. Bus propagation\n\nSkipped: {why}.", None
    channel = f"authsession-bench:{uuid.uuid4().hex}"
    child = subprocess.Popen(
        [sys.executable, __file__, "--bus-listener", REDIS_URL, channel],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        if child.stdout.readline().strip() != "ready":
            return "## 4. Bus propagation\n\nSkipped: the listener could not subscribe.", None
        cfg = AuthConfig(secret=SECRET, cache={"bus": REDIS_URL, "bus_channel": channel})
        rt = AuthRuntime(cfg)
        assert rt.invalidation.bus.connected.wait(10)
        latencies = []
        for _ in range(count):
            token = rt.sign_in_sync({"id": "1", "name": "Ada"})
            start = time.monotonic()
            rt.sign_out_sync({NAME: token})
            key_hex, at = child.stdout.readline().split()
            assert key_hex == token_key(token).hex()
            latencies.append((float(at) - start) * 1000)
        rt.close()
    finally:
        child.stdin.close()
        child.wait(10)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(f"{channel}:denied")
        client.close()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))]

    measured = {
        "median": statistics.median(latencies),
        "p90": pct(90),
        "p99": pct(99),
        "max": latencies[-1],
    }
    rows = [
        [f"{count} sign-outs"] + [f"{measured[k]:.2f}" for k in ("median", "p90", "p99", "max")]
    ]
    table = markdown_table(
        ["bus on loopback Redis", "median ms", "p90 ms", "p99 ms", "max ms"], rows, "lrrrr"
    )
    text = (
        "## 4. Bus propagation\n\nFrom calling `sign_out_sync` in this process to the "
        "denial being in the other process's cache (it refuses the token from then "
        "on). Both processes use the test Redis on 127.0.0.1.\n\n" + table
    )
    return text, measured


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; print only")
    parser.add_argument(
        "--bus-listener", nargs=2, metavar=("URL", "CHANNEL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.bus_listener:
        listener(*args.bus_listener)
        return 0
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cost, c = cost_section(args.quick)
    print(cost, "\n", flush=True)
    flight, f = single_flight_section()
    print(flight, "\n", flush=True)
    memory, m = memory_section(args.quick)
    print(memory, "\n", flush=True)
    bus, b = bus_section(args.quick)
    print(bus, "\n", flush=True)
    targets = [
        [
            "cache's share of a cached request ≤ 3 µs",
            f"{c['layer']:.2f} µs",
            "PASS" if c["layer"] <= 3 else "FAIL",
        ],
        [
            "full cached get_session_sync ≤ 3 µs",
            f"{c['cached']:.2f} µs",
            "PASS" if c["cached"] <= 3 else "FAIL",
        ],
        [
            "1,000 concurrent tasks: exactly 1 resolution",
            str(f["tasks"]),
            "PASS" if f["tasks"] == 1 else "FAIL",
        ],
        [
            "100 threads x 10: exactly 1 resolution",
            str(f["threads"]),
            "PASS" if f["threads"] == 1 else "FAIL",
        ],
        [
            "100,000 sessions ≤ 200 MB (tracemalloc)",
            f"{m['traced_mb']:.1f} MB",
            "PASS" if m["traced_mb"] <= 200 else "FAIL",
        ],
        [
            "100,000 sessions ≤ 200 MB (RSS delta)",
            f"{m['rss_mb']:.1f} MB",
            "PASS" if m["rss_mb"] <= 200 else "FAIL",
        ],
    ]
    if b is not None:
        targets.append(
            [
                "bus propagation median < 100 ms",
                f"{b['median']:.2f} ms",
                "PASS" if b["median"] < 100 else "FAIL",
            ]
        )
        targets.append(
            [
                "bus propagation p99 < 100 ms",
                f"{b['p99']:.2f} ms",
                "PASS" if b["p99"] < 100 else "FAIL",
            ]
        )
    target_text = "## Targets\n\n" + markdown_table(
        ["target", "measured", "result"], targets, "lrl"
    )
    print(target_text)
    if args.quick:
        return 0
    header = (
        f"Command: `python benchmarks/cache.py` on {started}.\n\n"
        f"Machine: {machine_summary()} (shared with other work: read the ratios, "
        "not the absolute numbers)."
    )
    out = ROOT / "benchmarks" / "results" / "cache.md"
    write_markdown(out, "Session cache", [header, target_text, cost, flight, memory, bus])
    print(f"\nwrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
