"""The invalidation bus on a real Redis: several runtimes in this process, each with its own bus."""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import time
import warnings

import pytest
from tests._services import require_redis, unique_name
from tests.cache._redis_server import RedisServer
from tests.conftest import SECRET

from authsession import AuthConfig, AuthRuntime, jwt
from authsession._cache import token_key

NAME = "authjs.session-token"
USER = {"id": "7", "name": "Ada", "email": "ada@example.com"}


@pytest.fixture
def redis_url() -> str:
    return require_redis()


@pytest.fixture
def channel(redis_url):
    name = unique_name("authsession_bus")
    yield name
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(f"{name}:denied")
    finally:
        client.close()


@pytest.fixture
def make_runtime(redis_url, channel):
    made: list[AuthRuntime] = []

    def make(url: str | None = None, wait: bool = True, **cache) -> AuthRuntime:
        cache = {"bus": url or redis_url, "bus_channel": channel, "ttl": 3600, **cache}
        rt = AuthRuntime(AuthConfig(secret=SECRET, cache=cache))
        made.append(rt)
        if wait:
            assert rt.invalidation.bus.connected.wait(5), rt.cache_stats()
        return rt

    yield make
    for rt in made:
        rt.close()


def wait_for(predicate, timeout=5.0) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout:
            raise AssertionError("condition not reached in time")
        time.sleep(0.0005)
    return time.perf_counter() - start


def signed_in(rt: AuthRuntime) -> str:
    return f"{NAME}={rt.sign_in_sync(USER)}"


def test_a_sign_out_in_one_process_is_refused_by_the_others(make_runtime):
    a, b, c = make_runtime(), make_runtime(), make_runtime()
    header = signed_in(a)
    for rt in (a, b, c):
        assert rt.get_session_sync(header).user.name == "Ada"
    assert b.cache_stats()["size"] == 1
    a.sign_out_sync(header)
    for rt in (b, c):
        latency = wait_for(lambda rt=rt: rt.get_session_sync(header) is None, timeout=1.0)
        assert latency < 1.0
    # not just the cached entry: a fresh decode of the same cookie is refused too
    for _ in range(3):
        assert b.get_session_sync(header) is None
    wait_for(lambda: a.cache_stats()["bus_published"] == 1)
    assert a.cache_stats()["bus_received"] == 0
    assert b.cache_stats()["bus_received"] == 1 and b.cache_stats()["denied"] >= 1


def test_an_update_drops_the_entry_cached_elsewhere(make_runtime):
    a, b = make_runtime(), make_runtime()
    header = signed_in(a)
    assert b.get_session_sync(header) is not None
    assert b.cache_stats()["size"] == 1
    assert a.update_session_sync(header, {"name": "Grace"}) is not None
    wait_for(lambda: b.cache_stats()["size"] == 0, timeout=1.0)
    # The old jwt still decodes (Auth.js cannot revoke it): B resolves it afresh.
    assert b.get_session_sync(header) is not None
    assert b.cache_stats()["resolutions"] == 2


def test_a_sign_in_replacing_a_cookie_drops_the_old_one_everywhere(make_runtime):
    a, b = make_runtime(), make_runtime()
    old = signed_in(a)
    assert b.get_session_sync(old) is not None
    a.sign_in_sync({"id": "8", "name": "Bob"}, request=old)
    wait_for(lambda: b.cache_stats()["size"] == 0, timeout=1.0)


def test_a_process_started_after_the_sign_out_refuses_the_token(make_runtime):
    a = make_runtime()
    header = signed_in(a)
    a.sign_out_sync(header)
    wait_for(lambda: a.cache_stats()["bus_published"] == 1)
    late = make_runtime()
    assert late.cache_stats()["revoked"] == 1
    assert late.get_session_sync(header) is None


def test_the_bus_carries_the_tokens_digest_never_the_token(make_runtime, redis_url, channel):
    import redis

    a = make_runtime()
    header = signed_in(a)
    token = header.split("=", 1)[1]
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    try:
        pubsub.subscribe(channel)
        assert pubsub.get_message(timeout=2)["type"] == "subscribe"
        a.sign_out_sync(header)
        message = pubsub.get_message(timeout=2)
        assert message is not None
        data = message["data"].decode()
        op, digest, until, _origin = data.split(" ")
        assert op == "deny" and digest == hashlib.sha256(token.encode()).hexdigest()
        assert token not in data and float(until) > time.time()
        members = client.zrange(f"{channel}:denied", 0, -1)
        assert members == [digest.encode()]
    finally:
        pubsub.close()
        client.close()


def test_own_malformed_and_foreign_channel_messages(make_runtime, redis_url, channel):
    import redis

    a, b = make_runtime(), make_runtime()
    other = make_runtime(bus_channel=channel + "_other")
    header = signed_in(a)
    for rt in (b, other):
        assert rt.get_session_sync(header) is not None
    client = redis.Redis.from_url(redis_url)
    try:
        for junk in ("", "deny", "deny xyz 1 o", "drop " + "0" * 64 + " nan o", "x" * 5000, "\xff"):
            client.publish(channel, junk)
    finally:
        client.close()
    a.sign_out_sync(header)
    wait_for(lambda: b.get_session_sync(header) is None, timeout=1.0)
    assert b.cache_stats()["bus_received"] == 1  # the junk was ignored
    assert b.cache_stats()["bus"] == "connected"
    assert a.cache_stats()["bus_received"] == 0  # its own message is not applied twice
    time.sleep(0.1)
    assert other.get_session_sync(header) is not None  # another channel, another app


def test_closing_and_dropping_a_runtime_stops_its_bus(make_runtime):
    rt = make_runtime()
    bus = rt.invalidation.bus
    rt.close()
    assert bus.state == "closed" and not bus.connected.is_set()
    dropped = AuthRuntime(rt.config)
    bus = dropped.invalidation.bus
    assert bus.connected.wait(5)
    del dropped
    gc.collect()
    wait_for(lambda: bus.state == "closed")


def test_bus_unreachable_from_the_start(make_runtime, caplog):
    caplog.set_level(logging.WARNING, "authsession")
    server = RedisServer()  # not started: nothing listens on its port
    rt = make_runtime(
        url=f"redis://:s3cret@127.0.0.1:{server.port}/0", wait=False, bus_fallback_ttl=0.3
    )
    wait_for(lambda: rt.cache_stats()["bus_reconnects"] >= 2)
    stats = rt.cache_stats()
    assert stats["bus"] == "down" and stats["ttl_cap"] == 0.3
    warnings_ = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings_) == 1  # once, however many reconnection attempts
    assert "s3cret" not in caplog.text
    header = signed_in(rt)
    assert rt.get_session_sync(header) is not None  # sessions still work...
    (entry,) = rt.cache._lru.values()
    assert entry.deadline <= time.monotonic() + 0.3  # ... cached only briefly
    rt.sign_out_sync(header)  # queued for the bus, applied here at once
    assert rt.get_session_sync(header) is None


def test_bus_outage_and_recovery(make_runtime, caplog):
    caplog.set_level(logging.INFO, "authsession")
    server = RedisServer()
    server.start()
    try:
        a = make_runtime(url=server.url, bus_fallback_ttl=0.5)
        b = make_runtime(url=server.url, bus_fallback_ttl=0.5)
        header = signed_in(a)
        assert b.get_session_sync(header) is not None
        assert b.cache_stats()["ttl_cap"] is None

        server.stop()
        wait_for(lambda: b.cache_stats()["bus"] == "down" and a.cache_stats()["bus"] == "down")
        assert b.cache_stats()["size"] == 0  # what it cached may miss invalidations now
        assert b.cache_stats()["ttl_cap"] == 0.5
        assert b.get_session_sync(header) is not None  # still served, from a fresh decode
        a.sign_out_sync(header)  # nobody hears it yet; A keeps it for later
        time.sleep(0.5)  # several reconnection attempts
        down_warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(down_warnings) == 2  # once per bus

        server.start()
        assert a.invalidation.bus.connected.wait(10) and b.invalidation.bus.connected.wait(10)
        assert b.cache_stats()["ttl_cap"] is None
        assert sum("reachable again" in r.getMessage() for r in caplog.records) == 2
        # the sign-out made during the outage reaches B after the recovery
        wait_for(lambda: b.get_session_sync(header) is None, timeout=2.0)
        wait_for(lambda: a.cache_stats()["bus_published"] == 1)

        # the warning is once per outage, not once per process lifetime
        server.stop()
        wait_for(lambda: b.cache_stats()["bus"] == "down")
        down_warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(down_warnings) >= 3
    finally:
        server.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_gets_its_own_working_bus(make_runtime):
    parent = make_runtime()
    header = signed_in(parent)
    parent_origin = parent.invalidation.bus.origin
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: like a gunicorn --preload worker
        code = 1
        try:
            bus = parent.invalidation.bus
            if bus.connected.wait(5) and bus.origin != parent_origin:
                parent.sign_out_sync(header)
                deadline = time.monotonic() + 5
                while parent.cache_stats()["bus_published"] < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                code = 0 if parent.cache_stats()["bus_published"] == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the parent hears the child's sign-out
    key = token_key(header.split("=", 1)[1])
    wait_for(lambda: parent.cache.is_revoked(key), timeout=2.0)


# -- the sorted set of denials ---------------------------------------------------------


def jwt_header(days: int) -> str:
    """A session cookie expiring in ``days`` days."""
    claims = {"sub": str(days), "name": f"u{days}"}
    return f"{NAME}={jwt.encode(claims, SECRET, NAME, max_age=days * 86400)}"


def test_the_denied_set_is_capped_at_max_revoked_keeping_the_latest_expiring(
    make_runtime, redis_url, channel
):
    import redis

    a = make_runtime(max_revoked=2)
    headers = {days: jwt_header(days) for days in (3, 1, 4, 2)}
    for header in headers.values():
        a.sign_out_sync(header)
    wait_for(lambda: a.cache_stats()["bus_published"] == 4)
    client = redis.Redis.from_url(redis_url)
    try:
        members = set(client.zrange(f"{channel}:denied", 0, -1))
    finally:
        client.close()
    assert members == {
        hashlib.sha256(headers[days].split("=", 1)[1].encode()).hexdigest().encode()
        for days in (3, 4)
    }


def test_a_subscribing_process_loads_the_latest_expiring_denials_first(
    make_runtime, redis_url, channel
):
    import redis

    headers = {days: jwt_header(days) for days in (1, 2, 3)}
    client = redis.Redis.from_url(redis_url)
    try:  # three denials in Redis (written by processes with a larger max_revoked)
        for days, header in headers.items():
            key = token_key(header.split("=", 1)[1]).hex()
            client.zadd(f"{channel}:denied", {key: time.time() + days * 86400})
    finally:
        client.close()
    late = make_runtime(max_revoked=2)
    assert late.cache_stats()["revoked"] == 2
    assert late.get_session_sync(headers[3]) is None
    assert late.get_session_sync(headers[2]) is None
    assert late.get_session_sync(headers[1]) is not None  # the soonest to expire was left out


def test_random_cookies_signed_out_never_reach_the_denied_set(redis_url, channel):
    import httpx
    import redis

    from authsession._proxy_config import ProxyConfig

    victim = "victim-token-value"

    def upstream(request: httpx.Request) -> httpx.Response:
        live = f"{NAME}={victim}" in request.headers.get("cookie", "")
        body = {"user": {"name": "v"}, "expires": "2999-01-01T00:00:00.000Z"}
        return httpx.Response(200, json=body if live else None)

    rt = AuthRuntime(
        ProxyConfig(
            upstream_url="https://upstream.test",
            transport=httpx.MockTransport(upstream),
            cache={"bus": redis_url, "bus_channel": channel, "max_revoked": 5},
        )
    )
    client = redis.Redis.from_url(redis_url)
    try:
        assert rt.invalidation.bus.connected.wait(5)
        assert rt.get_session_sync({NAME: victim}) is not None
        rt.sign_out_sync({NAME: victim})
        for _ in range(20):
            rt.sign_out_sync({NAME: os.urandom(8).hex()})
        wait_for(lambda: rt.cache_stats()["bus_published"] == 21)  # 1 deny, 20 drops
        assert client.zrange(f"{channel}:denied", 0, -1) == [token_key(victim).hex().encode()]
        assert rt.get_session_sync({NAME: victim}) is None
    finally:
        client.close()
        rt.close()


def test_a_database_sign_out_drops_the_session_everywhere_without_a_denial(redis_url, channel):
    import redis

    from authsession.adapters import MemoryAdapter

    adapter = MemoryAdapter()  # one database shared by both "processes"
    cache = {"bus": redis_url, "bus_channel": channel, "ttl": 3600}
    a, b = (
        AuthRuntime(AuthConfig(strategy="database", adapter=adapter, cache=cache)) for _ in range(2)
    )
    client = redis.Redis.from_url(redis_url)
    try:
        assert a.invalidation.bus.connected.wait(5) and b.invalidation.bus.connected.wait(5)
        header = {NAME: a.sign_in_sync(dict(USER))}
        assert b.get_session_sync(header) is not None
        assert b.cache_stats()["size"] == 1
        a.sign_out_sync(header)
        wait_for(lambda: b.cache_stats()["size"] == 0, timeout=1.0)
        assert b.get_session_sync(header) is None  # the row is gone
        assert a.cache_stats()["revoked"] == b.cache_stats()["revoked"] == 0
        assert client.zcard(f"{channel}:denied") == 0
    finally:
        client.close()
        a.close()
        b.close()


# -- redis-py 5.0.0 ---------------------------------------------------------------------


def test_connections_are_closed_on_a_redis_without_aclose(make_runtime, monkeypatch):
    """redis 5.0.0 has no ``aclose()``: its ``close()`` coroutine must be used instead."""
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

    closed: list[str] = []

    def old_style(cls: type, name: str):
        aclose = cls.aclose

        async def close(self, *args, **kwargs):
            closed.append(name)
            await aclose(self)

        monkeypatch.delattr(cls, "aclose")
        monkeypatch.setattr(cls, "close", close)

    old_style(Redis, "client")
    old_style(PubSub, "pubsub")
    rt = make_runtime()
    rt.close()
    assert rt.invalidation.bus.state == "closed"
    assert sorted(closed) == ["client", "pubsub"]


async def test_aclose_stops_the_bus_from_async_code(make_runtime):
    rt = make_runtime()
    await rt.aclose()  # the wait for the bus thread runs off this loop
    assert rt.invalidation.bus.state == "closed"
    assert rt.cache_stats()["bus"] == "closed"
