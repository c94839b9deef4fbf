"""Outages, races and threads: what happens when the store misbehaves or callers collide.

* An adapter that raises makes sessions read as None, with exactly one
  warning per outage (never the token), nothing cached, and sessions back as
  soon as the store answers again.
* A sign-out racing a read never lets the read put the session back.
* Two runtimes sliding the same row keep the later expiry, cookie included.
* Many threads and tasks on a few tokens resolve correctly and cost one store
  read per token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from authsession._cache import token_key
from authsession.adapters import AdapterUnavailable

from .conftest import (
    COOKIE,
    MAX_AGE,
    UPDATE_AGE,
    USER,
    CountingAdapter,
    FlakyAdapter,
    row,
    seed,
)


class GatedAdapter(CountingAdapter):
    """Holds the first call of a method (before or after the store ran it) until released.

    The hold polls with ``asyncio.sleep``, so it never blocks the loop the
    adapter runs on: other adapter calls proceed meanwhile.
    """

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self._gates: dict[str, tuple[str, threading.Event, threading.Event]] = {}

    def hold(self, name: str, when: str = "after") -> tuple[threading.Event, threading.Event]:
        """(reached, release) events for the next call of ``name``."""
        reached, release = threading.Event(), threading.Event()
        self._gates[name] = (when, reached, release)
        return reached, release

    def __getattr__(self, name: str) -> Any:
        counted = super().__getattr__(name)
        if not callable(counted) or name.startswith("_"):
            return counted

        async def wait(reached: threading.Event, release: threading.Event) -> None:
            reached.set()
            while not release.is_set():
                await asyncio.sleep(0.002)

        async def gated(*args: Any, **kwargs: Any) -> Any:
            gate = self._gates.pop(name, None)
            if gate is not None and gate[0] == "before":
                await wait(gate[1], gate[2])
            result = await counted(*args, **kwargs)
            if gate is not None and gate[0] == "after":
                await wait(gate[1], gate[2])
            return result

        return gated


class CookieRecorder:
    """A response whose ``set_cookie`` keeps the exact ``expires`` datetimes."""

    def __init__(self) -> None:
        self.cookies: dict[str, dict[str, Any]] = {}

    def set_cookie(self, name: str, value: str, **options: Any) -> None:
        self.cookies[name] = {"value": value, **options}


def warnings_from(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- outages ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_outage_reads_none_warns_once_caches_nothing_and_recovers(
    adapter, make_runtime, caplog, mode
):
    flaky = FlakyAdapter(adapter)
    rt = make_runtime(adapter=flaky)
    tokens = [seed(adapter)[0] for _ in range(3)]

    def read(token: str) -> Any:
        if mode == "sync":
            return rt.get_session_sync({COOKIE: token})
        return asyncio.run(rt.get_session({COOKIE: token}))

    caplog.set_level(logging.DEBUG, logger="authsession")
    flaky.down = True
    for _ in range(4):
        for token in tokens:
            assert read(token) is None
    # Every request asked the store: no failure was remembered as "no session".
    assert flaky.calls["failed:get_session_and_user"] == 12
    assert rt.cache_stats()["size"] == 0
    (warning,) = warnings_from(caplog)
    assert "FlakyAdapter" in warning.getMessage()  # names the adapter
    assert "AdapterUnavailable" in warning.getMessage()
    assert not any(t in r.getMessage() for r in caplog.records for t in tokens)

    caplog.clear()
    flaky.down = False
    assert all(read(token) is not None for token in tokens)  # no restart, no wait
    assert warnings_from(caplog) == []
    assert any("answers again" in r.getMessage() for r in caplog.records)

    # A second outage is a second warning.
    flaky.down = True
    rt.cache.clear()
    assert read(tokens[0]) is None and read(tokens[1]) is None
    assert len(warnings_from(caplog)) == 1


def test_cached_sessions_survive_an_outage(adapter, make_runtime):
    flaky = FlakyAdapter(adapter)
    rt = make_runtime(adapter=flaky)
    token, _ = seed(adapter)
    assert rt.get_session_sync({COOKIE: token})
    flaky.down = True
    assert rt.get_session_sync({COOKIE: token})  # until the entry's ttl ends


def test_a_failed_slide_is_no_session_and_not_cached(adapter, make_runtime, caplog):
    flaky = FlakyAdapter(adapter)
    rt = make_runtime(adapter=flaky)
    token, _ = seed(adapter, age=UPDATE_AGE + 60)

    real_update = adapter.update_session

    async def failing_update(**kwargs: Any) -> Any:
        raise AdapterUnavailable("write failed")

    adapter.update_session = failing_update
    try:
        assert rt.get_session_sync({COOKIE: token}) is None
        assert len(warnings_from(caplog)) == 1
    finally:
        adapter.update_session = real_update
    assert rt.get_session_sync({COOKIE: token}) is not None


def test_sign_out_during_an_outage_clears_cookies_and_logs(adapter, make_runtime, caplog):
    flaky = FlakyAdapter(adapter)
    rt = make_runtime(adapter=flaky)
    token, _ = seed(adapter)
    flaky.down = True
    response: list[tuple[str, str]] = []
    rt.sign_out_sync({COOKIE: token}, response)
    assert response and "Max-Age=0" in response[0][1]
    assert any(
        r.levelno == logging.ERROR and "stays valid" in r.getMessage() for r in caplog.records
    )
    assert not any(token in r.getMessage() for r in caplog.records)


def test_sign_in_during_an_outage_raises(adapter, make_runtime):
    flaky = FlakyAdapter(adapter)
    flaky.down = True
    with pytest.raises(AdapterUnavailable):
        make_runtime(adapter=flaky).sign_in_sync(dict(USER))


# -- races ------------------------------------------------------------------------


def test_sign_out_racing_a_read_never_resurrects(adapter, make_runtime):
    gated = GatedAdapter(adapter)
    rt = make_runtime(adapter=gated, cache={"ttl": 300})
    token, _ = seed(adapter)
    # The read has fetched the live row and is about to cache it...
    reached, release = gated.hold("get_session_and_user", "after")
    reader = threading.Thread(target=rt.get_session_sync, args=({COOKIE: token},))
    reader.start()
    assert reached.wait(5)
    # ... when the user signs out. Give the sign-out every chance to finish first.
    signer = threading.Thread(target=rt.sign_out_sync, args=({COOKIE: token},))
    signer.start()
    time.sleep(0.2)
    release.set()
    reader.join(5)
    signer.join(5)
    assert not reader.is_alive() and not signer.is_alive()
    assert row(adapter, token) is None
    entry = rt.cache.get(token_key(token))
    assert entry is None or entry.session is None
    assert rt.get_session_sync({COOKIE: token}) is None


async def test_sign_out_racing_an_async_read_never_resurrects(adapter, make_runtime):
    gated = GatedAdapter(adapter)
    rt = make_runtime(adapter=gated, cache={"ttl": 300})
    token, _ = seed(adapter)
    reached, release = gated.hold("get_session_and_user", "after")
    reader = asyncio.create_task(rt.get_session({COOKIE: token}))
    assert await asyncio.to_thread(reached.wait, 5)
    signer = asyncio.create_task(rt.sign_out({COOKIE: token}))
    await asyncio.sleep(0.2)
    release.set()
    await asyncio.wait_for(asyncio.gather(reader, signer), 5)
    assert row(adapter, token) is None
    assert await rt.get_session({COOKIE: token}) is None


def test_reads_during_a_sign_out_see_no_session(adapter, make_runtime):
    gated = GatedAdapter(adapter)
    rt = make_runtime(adapter=gated)
    token, _ = seed(adapter)
    reached, release = gated.hold("delete_session", "before")
    signer = threading.Thread(target=rt.sign_out_sync, args=({COOKIE: token},))
    signer.start()
    assert reached.wait(5)
    with ThreadPoolExecutor(4) as pool:
        reads = [pool.submit(rt.get_session_sync, {COOKIE: token}) for _ in range(4)]
        time.sleep(0.05)
        release.set()
        assert [f.result(5) for f in reads] == [None] * 4
    signer.join(5)
    assert gated.calls["get_session_and_user"] == 0  # they waited for the sign-out


def test_a_slide_racing_a_sign_out_does_not_recreate_the_row(adapter, make_runtime):
    gated = GatedAdapter(adapter)
    rt = make_runtime(adapter=gated)
    token, _ = seed(adapter, age=UPDATE_AGE + 60)
    reached, release = gated.hold("update_session", "before")
    result: list[Any] = []
    reader = threading.Thread(target=lambda: result.append(rt.get_session_sync({COOKIE: token})))
    reader.start()
    assert reached.wait(5)
    # Another process (the Auth.js app) deletes the row mid-slide.
    from authsession._bridge import run_sync

    run_sync(adapter.delete_session(token))
    release.set()
    reader.join(5)
    assert result == [None]
    assert row(adapter, token) is None


def test_two_concurrent_slides_keep_the_later_expiry(adapter, make_runtime):
    gated = GatedAdapter(adapter)
    early, late = make_runtime(adapter=gated), make_runtime(adapter=gated)  # two processes
    token, _ = seed(adapter, age=UPDATE_AGE + 60)
    # `early` computes its new expiry first but writes it last.
    reached, release = gated.hold("update_session", "before")
    early_cookies, late_cookies = CookieRecorder(), CookieRecorder()
    first = threading.Thread(
        target=early.get_session_sync, args=(({COOKIE: token}, early_cookies),)
    )
    first.start()
    assert reached.wait(5)
    time.sleep(0.05)
    assert late.get_session_sync(({COOKIE: token}, late_cookies))
    release.set()
    first.join(5)
    stored: datetime = row(adapter, token)["expires"]
    late_expiry = late_cookies.cookies[COOKIE]["expires"]
    early_expiry = early_cookies.cookies[COOKIE]["expires"]
    assert stored == late_expiry  # the earlier write did not move it back
    assert early_expiry == stored  # and its cookie says what the row says
    assert stored.timestamp() > time.time() + MAX_AGE - 5


# -- threads and tasks ------------------------------------------------------------


def test_many_threads_on_few_tokens(adapter, make_runtime):
    counting = CountingAdapter(adapter)
    rt = make_runtime(adapter=counting)
    users = [{**USER, "email": f"u{i}@example.com"} for i in range(8)]
    tokens = [seed(adapter, user=u)[0] for u in users]

    def work(i: int) -> str | None:
        session = rt.get_session_sync({COOKIE: tokens[i % len(tokens)]})
        return None if session is None else session.user.email

    with ThreadPoolExecutor(16) as pool:
        emails = list(pool.map(work, range(400)))
    assert emails == [users[i % len(users)]["email"] for i in range(400)]
    assert counting.calls["get_session_and_user"] == len(tokens)  # single flight + cache


async def test_threads_and_tasks_together(adapter, make_runtime):
    counting = CountingAdapter(adapter)
    rt = make_runtime(adapter=counting)
    token, _ = seed(adapter)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(rt.get_session_sync, {COOKIE: token}) for _ in range(50)]
        sessions = await asyncio.gather(*(rt.get_session({COOKIE: token}) for _ in range(50)))
        sessions += [f.result(10) for f in futures]
    assert all(s is not None and s.user.email == USER["email"] for s in sessions)
    assert counting.calls["get_session_and_user"] == 1


async def test_sync_sign_out_inside_async_code_does_not_wait_on_its_own_loop(adapter, make_runtime):
    gated = GatedAdapter(adapter)
    rt = make_runtime(adapter=gated)
    token, _ = seed(adapter)
    reached, release = gated.hold("get_session_and_user", "after")
    reader = asyncio.create_task(rt.get_session({COOKIE: token}))
    assert await asyncio.to_thread(reached.wait, 5)
    threading.Timer(0.1, release.set).start()
    started = time.monotonic()
    # Blocks this loop, where the reader waits: it must not wait for the reader.
    rt.sign_out_sync({COOKIE: token})
    assert time.monotonic() - started < 5
    await asyncio.wait_for(reader, 5)
    assert row(adapter, token) is None
    assert await rt.get_session({COOKIE: token}) is None
