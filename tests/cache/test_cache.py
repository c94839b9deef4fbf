"""The session cache under threads and asyncio: single flight, failures, expiry, keys, stats."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import SECRET

from authsession import AuthConfig, AuthRuntime, CacheOptions, ConfigurationError, Session, jwt
from authsession._cache import REVOKED, Entry, SessionCache, token_key
from authsession._time import iso_ms

NAME = "authjs.session-token"
CLAIMS = {"name": "Ada", "email": "ada@example.com", "sub": "42"}


def cookie(claims=CLAIMS, salt=NAME, max_age=3600) -> str:
    return f"{salt}={jwt.encode(claims, SECRET, salt, max_age)}"


def runtime(**kw) -> AuthRuntime:
    kw.setdefault("secret", SECRET)
    return AuthRuntime(AuthConfig(**kw))


def count_resolutions(rt: AuthRuntime) -> list[int]:
    """Wrap the strategy so every call of it (a resolution) is counted."""
    calls: list[int] = []
    original = rt.strategy.resolve

    def counted(found):
        calls.append(1)
        return original(found)

    rt.strategy.resolve = counted  # type: ignore[method-assign]
    return calls


def wait_for(predicate, timeout=5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.001)


def session(expires_in: float = 3600.0, name: str = "Ada") -> Session:
    return Session({"user": {"name": name}, "expires": iso_ms(time.time() + expires_in)})


# -- single flight ------------------------------------------------------------------


def test_1000_concurrent_tasks_on_one_token_resolve_once():
    async def slow(session):
        await asyncio.sleep(0.05)  # every task misses while the first resolves
        return session

    rt = runtime(callbacks={"session": slow})
    calls = count_resolutions(rt)
    header = cookie()

    async def main():
        return await asyncio.gather(*(rt.get_session(header) for _ in range(1000)))

    results = asyncio.run(main())
    assert len(calls) == 1
    assert len(results) == 1000 and all(r is not None and r.user.name == "Ada" for r in results)
    stats = rt.cache_stats()
    assert stats["resolutions"] == 1 and stats["coalesced"] == 999
    # and afterwards it is a plain hit
    assert asyncio.run(rt.get_session(header)).user.name == "Ada"
    assert len(calls) == 1 and rt.cache_stats()["hits"] == 1


def test_50_threads_on_one_token_resolve_once():
    gate = threading.Event()

    def held(session):
        gate.wait(10)
        return session

    rt = runtime(callbacks={"session": held})
    calls = count_resolutions(rt)
    header = cookie()
    results: list[Session | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(rt.get_session_sync(header)))
        for _ in range(50)
    ]
    for t in threads:
        t.start()
    # all 49 others are waiting on the one resolution before it is allowed to finish
    wait_for(lambda: rt.cache_stats()["coalesced"] == 49)
    gate.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert len(results) == 50 and all(r is not None and r.user.name == "Ada" for r in results)


def test_threads_and_tasks_share_one_resolution():
    gate = threading.Event()

    async def held(session):
        await asyncio.to_thread(gate.wait, 10)
        return session

    rt = runtime(callbacks={"session": held})
    calls = count_resolutions(rt)
    header = cookie()
    thread_results: list[Session | None] = []

    async def main():
        tasks = [asyncio.create_task(rt.get_session(header)) for _ in range(10)]
        await asyncio.sleep(0.01)  # a task leads
        threads = [
            threading.Thread(target=lambda: thread_results.append(rt.get_session_sync(header)))
            for _ in range(10)
        ]
        for t in threads:
            t.start()
        await asyncio.to_thread(wait_for, lambda: rt.cache_stats()["coalesced"] == 19)
        gate.set()
        results = await asyncio.gather(*tasks)
        for t in threads:
            await asyncio.to_thread(t.join, 10)
        return results

    task_results = asyncio.run(main())
    assert len(calls) == 1
    assert all(r.user.name == "Ada" for r in [*task_results, *thread_results])
    assert len(thread_results) == 10


def test_a_thread_leader_serves_waiting_tasks_on_other_loops():
    gate = threading.Event()

    def held(session):
        gate.wait(10)
        return session

    rt = runtime(callbacks={"session": held})
    calls = count_resolutions(rt)
    header = cookie()
    leader = threading.Thread(target=rt.get_session_sync, args=(header,))
    leader.start()
    wait_for(lambda: rt.cache_stats()["resolutions"] == 1)
    results: list[Session | None] = []

    def loop_with_tasks():
        async def main():
            return await asyncio.gather(*(rt.get_session(header) for _ in range(5)))

        results.extend(asyncio.run(main()))

    loops = [threading.Thread(target=loop_with_tasks) for _ in range(3)]
    for t in loops:
        t.start()
    wait_for(lambda: rt.cache_stats()["coalesced"] == 15)
    gate.set()
    for t in [leader, *loops]:
        t.join(10)
    assert len(calls) == 1 and len(results) == 15 and all(r.user.name == "Ada" for r in results)


def test_a_sync_read_on_the_leaders_own_loop_does_not_deadlock():
    """Sync code called from async code: waiting would block the loop the leader runs on."""

    async def slow(session):
        await asyncio.sleep(0.05)
        return session

    rt = runtime(callbacks={"session": slow})
    header = cookie()

    async def main():
        leader = asyncio.create_task(rt.get_session(header))
        await asyncio.sleep(0.01)  # the task is mid-resolution, suspended on this loop
        blocking = rt.get_session_sync(header)  # must resolve alone, not wait for the task
        return blocking, await leader

    done = threading.Event()
    outcome: list = []
    thread = threading.Thread(target=lambda: (outcome.extend(asyncio.run(main())), done.set()))
    thread.start()
    assert done.wait(10), "deadlocked"
    assert [s.user.name for s in outcome] == ["Ada", "Ada"]


def test_failed_resolution_gives_every_waiter_none_and_the_next_request_retries(caplog):
    attempts: list[int] = []

    async def flaky(session):
        attempts.append(1)
        await asyncio.sleep(0.05)
        if len(attempts) == 1:
            raise RuntimeError("store down")
        return session

    rt = runtime(callbacks={"session": flaky})
    header = cookie()

    async def main():
        return await asyncio.gather(*(rt.get_session(header) for _ in range(100)))

    assert asyncio.run(main()) == [None] * 100
    assert len(attempts) == 1
    logged = [r for r in caplog.records if "RuntimeError: store down" in r.getMessage()]
    assert len(logged) == 1  # once, by the leader
    assert rt.cache_stats()["size"] == 0  # the failure is not cached, as a session or at all
    assert asyncio.run(rt.get_session(header)).user.name == "Ada"
    assert len(attempts) == 2


def test_failed_resolution_reaches_waiting_threads_too():
    gate = threading.Event()
    attempts: list[int] = []

    def flaky(session):
        attempts.append(1)
        gate.wait(10)
        if len(attempts) == 1:
            raise RuntimeError("store down")
        return session

    rt = runtime(callbacks={"session": flaky})
    header = cookie()
    results: list = []
    threads = [
        threading.Thread(target=lambda: results.append(rt.get_session_sync(header)))
        for _ in range(20)
    ]
    for t in threads:
        t.start()
    wait_for(lambda: rt.cache_stats()["coalesced"] == 19)
    gate.set()
    for t in threads:
        t.join(10)
    assert results == [None] * 20 and len(attempts) == 1
    assert rt.get_session_sync(header).user.name == "Ada" and len(attempts) == 2


def test_a_cancelled_waiter_does_not_cancel_the_resolution():
    async def slow(session):
        await asyncio.sleep(0.1)
        return session

    rt = runtime(callbacks={"session": slow})
    header = cookie()

    async def main():
        leader = asyncio.create_task(rt.get_session(header))
        await asyncio.sleep(0.01)
        waiters = [asyncio.create_task(rt.get_session(header)) for _ in range(3)]
        await asyncio.sleep(0.01)
        waiters[0].cancel()
        return await asyncio.gather(leader, *waiters, return_exceptions=True)

    leader, cancelled, *others = asyncio.run(main())
    assert isinstance(cancelled, asyncio.CancelledError)
    assert leader.user.name == "Ada" and all(o.user.name == "Ada" for o in others)


def test_a_cancelled_leader_hands_over_to_a_waiter():
    calls: list[int] = []

    async def slow(session):
        calls.append(1)
        await asyncio.sleep(0.1)
        return session

    rt = runtime(callbacks={"session": slow})
    header = cookie()

    async def main():
        leader = asyncio.create_task(rt.get_session(header))
        await asyncio.sleep(0.01)
        waiters = [asyncio.create_task(rt.get_session(header)) for _ in range(5)]
        await asyncio.sleep(0.01)
        leader.cancel()
        return await asyncio.gather(leader, *waiters, return_exceptions=True)

    leader, *waiters = asyncio.run(main())
    assert isinstance(leader, asyncio.CancelledError)
    # the waiters are not told "signed out": one of them resolves, the rest share it
    assert all(w.user.name == "Ada" for w in waiters)
    assert len(calls) == 2


def test_invalidation_during_a_resolution_keeps_its_result_out_of_the_cache():
    gate = threading.Event()

    def held(session):
        gate.wait(10)
        return session

    rt = runtime(callbacks={"session": held})
    calls = count_resolutions(rt)
    header = cookie()
    reader = threading.Thread(target=rt.get_session_sync, args=(header,))
    reader.start()
    wait_for(lambda: len(calls) == 1)
    rt.cache.invalidate(token_key(header.split("=", 1)[1]))  # e.g. an update elsewhere
    gate.set()
    reader.join(10)
    assert rt.cache_stats()["size"] == 0  # what it read predates the invalidation
    assert rt.get_session_sync(header) is not None and len(calls) == 2


# -- expiry -------------------------------------------------------------------------


def test_an_entry_is_never_served_past_the_sessions_own_expiry():
    cache = SessionCache(CacheOptions(ttl=3600))
    key = token_key("t")
    cache.put(key, Entry(session(expires_in=0.15), time.monotonic() + 3600))
    assert cache.get(key) is not None
    time.sleep(0.2)
    assert cache.get(key) is None
    assert cache.stats()["expired"] == 1
    # an expiry already past is not stored at all
    cache.put(key, Entry(session(expires_in=-1), time.monotonic() + 3600))
    assert cache.stats()["size"] == 0


def test_jwt_entries_end_at_the_tokens_exp():
    rt = runtime(cache={"ttl": 3600})
    header = cookie(max_age=2)
    assert rt.get_session_sync(header) is not None
    (entry,) = rt.cache._lru.values()
    assert entry.deadline <= time.monotonic() + 2.01


def test_an_updated_session_is_cached_no_longer_than_max_age():
    rt = runtime(cache={"ttl": 3600}, max_age=2)
    value = rt.sign_in_sync({"id": 1, "name": "Ada"})
    rt.update_session_sync(f"{NAME}={value}", {"name": "Grace"})
    (entry,) = rt.cache._lru.values()
    assert entry.deadline <= time.monotonic() + 2.01


def test_ttl_cap_bounds_every_entry_and_drops_older_ones():
    cache = SessionCache(CacheOptions(ttl=3600))
    cache.put(b"a", Entry(session(), time.monotonic() + 3600))
    cache.cap_ttl(0.1)
    assert cache.get(b"a") is None  # cached before: may have missed an invalidation
    cache.put(b"b", Entry(session(), time.monotonic() + 3600))
    assert cache.get(b"b") is not None
    time.sleep(0.15)
    assert cache.get(b"b") is None
    cache.cap_ttl(None)
    cache.put(b"c", Entry(session(), time.monotonic() + 3600))
    time.sleep(0.15)
    assert cache.get(b"c") is not None


def test_a_bad_token_is_remembered_as_no_session_for_negative_ttl():
    rt = runtime(cache={"negative_ttl": 0.2})
    calls = count_resolutions(rt)
    for _ in range(50):
        assert rt.get_session_sync(f"{NAME}=garbage") is None
    assert len(calls) == 1
    time.sleep(0.25)
    assert rt.get_session_sync(f"{NAME}=garbage") is None
    assert len(calls) == 2


# -- keys ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    token=st.text(min_size=1, max_size=4096),
    last=st.characters(),
)
def test_tokens_differing_only_in_the_last_character_never_share_an_entry(token, last):
    other = token[:-1] + last
    if other == token:
        other = token[:-1] + ("a" if token[-1] != "a" else "b")
    cache = SessionCache(CacheOptions())
    key, other_key = token_key(token), token_key(other)
    assert key != other_key and len(key) == 32
    cache.put(key, Entry(session(name="first"), time.monotonic() + 60))
    assert cache.get(other_key) is None
    cache.put(other_key, Entry(session(name="second"), time.monotonic() + 60))
    assert cache.get(key).session.user.name == "first"
    assert cache.get(other_key).session.user.name == "second"


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_a_tampered_last_character_is_not_served_the_cached_session():
    rt = runtime()
    header = cookie()
    assert rt.get_session_sync(header).user.name == "Ada"
    # The tag's 86th base64url character carries 2 bits: flip the top one.
    flipped = header[:-1] + B64URL[B64URL.index(header[-1]) ^ 0b100000]
    assert rt.get_session_sync(flipped) is None
    # Flipping an unused low bit gives another spelling of the same bytes, which
    # jose accepts too: it is resolved on its own, never served the other's entry.
    twin = header[:-1] + B64URL[B64URL.index(header[-1]) ^ 0b000001]
    resolutions = rt.cache_stats()["resolutions"]
    assert rt.get_session_sync(twin).user.name == "Ada"
    assert rt.cache_stats()["resolutions"] == resolutions + 1


def test_an_entry_is_served_only_under_the_cookie_name_it_was_read_from():
    # A v5 token's key is derived from its cookie name: under another name it
    # does not decode, cached or not.
    rt = runtime()
    token = jwt.encode(CLAIMS, SECRET, NAME, 3600)
    assert rt.get_session_sync(f"{NAME}={token}").user.name == "Ada"
    assert rt.get_session_sync(f"__Secure-{NAME}={token}") is None
    # a Bearer token finds its key by kid: the same token is valid there
    assert rt.get_session_sync({"authorization": f"Bearer {token}"}).user.name == "Ada"
    assert rt.get_session_sync(f"{NAME}={token}").user.name == "Ada"


# -- sign-out revokes the token -------------------------------------------------------


def test_a_signed_out_jwt_is_refused_when_presented_again():
    rt = runtime()
    value = rt.sign_in_sync({"id": 1, "name": "Ada"})
    header = f"{NAME}={value}"
    assert rt.get_session_sync(header) is not None
    rt.sign_out_sync(header)
    assert jwt.decode(value, SECRET, NAME)["name"] == "Ada"  # it still decrypts...
    assert rt.get_session_sync(header) is None  # ... but is refused
    assert asyncio.run(rt.get_session(header)) is None
    assert rt.get_session_sync({"authorization": f"Bearer {value}"}) is None
    assert rt.update_session_sync(header, {"name": "Eve"}) is None  # no new token from it
    stats = rt.cache_stats()
    assert stats["revocations"] == 1 and stats["revoked"] == 1 and stats["denied"] >= 3


def test_revocations_end_at_the_tokens_exp():
    cache = SessionCache(CacheOptions())
    cache.revoke(b"k", time.time() + 0.1)
    assert cache.is_revoked(b"k")
    time.sleep(0.15)
    assert not cache.is_revoked(b"k")
    assert cache.stats()["revoked"] == 0
    cache.revoke(b"old", time.time() - 1)  # already dead: nothing to remember
    assert cache.stats()["revocations"] == 1 and not cache.is_revoked(b"old")


def test_the_denylist_is_bounded_and_says_so(caplog):
    cache = SessionCache(CacheOptions(max_revoked=2))
    for key in (b"a", b"b", b"c", b"d"):
        cache.revoke(key, time.time() + 60)
    assert cache.stats()["revoked"] == 2
    assert cache.is_revoked(b"d") and not cache.is_revoked(b"a")
    assert caplog.text.count("raise cache max_revoked") == 1
    off = SessionCache(CacheOptions(max_revoked=0))
    off.revoke(b"a", time.time() + 60)
    assert not off.is_revoked(b"a")


def test_an_undecodable_cookie_signed_out_is_not_remembered():
    rt = runtime()
    rt.sign_out_sync(f"{NAME}=garbage")
    assert rt.cache_stats()["revoked"] == 0


def test_a_revocation_during_a_resolution_wins():
    gate = threading.Event()
    cache = SessionCache(CacheOptions())
    key = token_key("tok")
    results: list = []

    def resolve():
        return Entry(session(), time.monotonic() + 60)

    def slow_resolve():
        gate.wait(10)
        return resolve()

    threads = [
        threading.Thread(target=lambda: results.append(cache.resolve_sync(key, "", slow_resolve)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    wait_for(lambda: cache.stats()["coalesced"] == 2)
    cache.revoke(key, time.time() + 60)
    gate.set()
    for t in threads:
        t.join(10)
    assert results == [REVOKED] * 3
    assert cache.resolve_sync(key, "", resolve) is REVOKED
    assert cache.stats()["size"] == 0


# -- stats ------------------------------------------------------------------------------


def test_stats_count_what_happened():
    rt = runtime(cache={"max_entries": 2, "negative_ttl": 60})
    a, b, c = cookie({"name": "A"}), cookie({"name": "B"}), cookie({"name": "C"})
    rt.get_session_sync(a)  # miss, resolution
    rt.get_session_sync(a)  # hit
    rt.get_session_sync(b)  # miss
    rt.get_session_sync(c)  # miss, evicts a
    rt.get_session_sync(a)  # miss again, evicts b
    rt.get_session_sync(f"{NAME}=bad")  # miss, negative entry, evicts c
    rt.get_session_sync(f"{NAME}=bad")  # hit (the negative entry)
    rt.sign_out_sync(a)  # drops a, revokes it
    rt.get_session_sync(a)  # refused
    stats = rt.cache_stats()
    assert {k: stats[k] for k in ("hits", "misses", "resolutions", "evictions")} == {
        "hits": 2,
        "misses": 6,
        "resolutions": 5,
        "evictions": 3,
    }
    assert stats["invalidations"] == 1 and stats["revocations"] == 1 and stats["denied"] == 1
    assert stats["size"] == 1 and stats["max_entries"] == 2 and stats["enabled"] is True
    assert stats["coalesced"] == 0 and stats["bus"] == "off" and stats["ttl_cap"] is None


def test_disabled_cache_still_single_flights_and_refuses_signed_out_tokens():
    rt = runtime(cache=False)
    calls = count_resolutions(rt)
    header = cookie()
    rt.get_session_sync(header)
    rt.get_session_sync(header)
    assert len(calls) == 2 and rt.cache_stats()["hits"] == 0
    rt.sign_out_sync(header)
    assert rt.get_session_sync(header) is None and len(calls) == 2


# -- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"bus": "http://x"}, "Redis URL"),
        ({"bus": "127.0.0.1:6379"}, "Redis URL"),
        ({"bus": 6379}, "Redis URL"),
        ({"bus": "redis://:pw@h"} | {"bus_channel": ""}, "bus_channel"),
        ({"bus_fallback_ttl": -1}, "bus_fallback_ttl"),
        ({"ttl": float("inf")}, "ttl"),
        ({"max_revoked": -1}, "max_revoked"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_bad_cache_options_name_the_setting(options, match):
    with pytest.raises(ConfigurationError, match=match):
        AuthConfig(secret=SECRET, cache=options)


def test_cache_options_are_hashable_and_hide_the_bus_password():
    options = {"bus": "redis://user:hunter2@127.0.0.1:1/0", "bus_channel": "c"}
    cfg = AuthConfig(secret=SECRET, cache=options)
    assert hash(cfg) == hash(AuthConfig(secret=SECRET, cache=dict(options)))
    assert "hunter2" not in repr(cfg.cache_options) and "user:***@" in repr(cfg.cache_options)
    with pytest.raises(ConfigurationError) as info:
        AuthConfig(secret=SECRET, cache={"bus": "http://u:hunter2@h"})
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "secret", "shown"),
    [
        ("redis://127.0.0.1:1/0?password=TOPSECRET", "TOPSECRET", "password=***"),
        ("redis://h/0?db=2&username=u&password=TOPSECRET", "TOPSECRET", "db=2&username=***"),
        ("redis://h/0?Password=TOP%20SECRET&x", "TOP%20SECRET", "Password=***&***"),
        ("unix:///run/redis.sock?db=0&password=TOPSECRET", "TOPSECRET", "sock?db=0&password=***"),
        ("rediss://:TOPSECRET@h:6380/0?password=TOPSECRET", "TOPSECRET", "rediss://:***@h:6380/0"),
        ("redis://h/0#TOPSECRET", "TOPSECRET", "redis://h/0#***"),
    ],
)
def test_bus_urls_hide_credentials_in_the_query_string_too(url, secret, shown):
    options = CacheOptions(bus=url)
    assert secret not in repr(options) and shown in repr(options)
    assert secret not in repr(AuthConfig(secret=SECRET, cache=options))
    with pytest.raises(ConfigurationError) as info:
        CacheOptions(bus=url.replace("redis", "http", 1).replace("unix", "http", 1))
    assert secret not in str(info.value)


def test_a_bus_url_without_credentials_is_shown_as_is():
    url = "redis://127.0.0.1:6379/0?db=1&socket_timeout=2"
    assert f"bus={url!r}" in repr(CacheOptions(bus=url))


# -- fork -------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_wait_on_a_resolution_in_flight_in_the_parent():
    # No bus: every cache, not only those with one, must be reset in the child.
    cache = SessionCache(CacheOptions())
    key = token_key("tok")
    gate = threading.Event()
    started = threading.Event()

    def slow_resolve():
        started.set()
        gate.wait(10)
        return Entry(session(name="parent"), time.monotonic() + 60)

    parent = threading.Thread(target=cache.resolve_sync, args=(key, "", slow_resolve))
    parent.start()
    try:
        assert started.wait(5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # the child: the resolving thread does not exist here
            code = 1
            try:
                entry = cache.resolve_sync(
                    key, "", lambda: Entry(session(name="child"), time.monotonic() + 60)
                )
                code = 0 if entry is not None and entry.session["user"]["name"] == "child" else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 10
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError("the forked child hung on the parent's resolution")
            time.sleep(0.01)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        gate.set()
        parent.join(10)
    assert cache.get(key, "").session["user"]["name"] == "parent"  # the parent is unaffected
