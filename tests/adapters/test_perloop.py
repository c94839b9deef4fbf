"""``PerLoop``: one open in flight per loop, shared by every waiter; a failed open
is remembered for a backoff (1 s doubling to 10 s) during which calls fail at
once with ``AdapterUnavailable``.

Time is a fake clock (``_perloop._now``), never slept through.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from authsession.adapters import AdapterUnavailable, _perloop
from authsession.adapters._perloop import BACKOFF_FIRST, BACKOFF_MAX, PerLoop


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(_perloop, "_now", fake)
    return fake


class Opener:
    """An ``open`` that waits for ``release`` and then fails (or succeeds), counting calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = True
        self.closed: list[Any] = []
        self.release = asyncio.Event()

    async def open(self) -> str:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise TimeoutError("pool initialization incomplete after 1.0 sec")
        return f"client-{self.calls}"

    async def close(self, value: Any) -> None:
        self.closed.append(value)


def per_loop(opener: Opener) -> PerLoop[str]:
    return PerLoop(opener.open, opener.close, describe="TestAdapter: Test at db:5432/x")


async def test_concurrent_callers_share_one_open_and_its_failure(clock: Clock) -> None:
    opener = Opener()
    clients = per_loop(opener)
    waiters = [asyncio.ensure_future(clients.get()) for _ in range(5)]
    await asyncio.sleep(0)  # every waiter has joined the one attempt
    opener.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert opener.calls == 1  # before the fix: 5 opens, one after the other
    assert all(isinstance(r, TimeoutError) for r in results)


async def test_a_failed_open_fails_fast_during_the_backoff_then_retries(clock: Clock) -> None:
    opener = Opener()
    opener.release.set()
    clients = per_loop(opener)
    with pytest.raises(TimeoutError):
        await clients.get()
    clock.now += BACKOFF_FIRST - 0.1
    with pytest.raises(AdapterUnavailable) as info:
        await clients.get()
    assert opener.calls == 1  # no new attempt inside the window
    message = str(info.value)
    assert "Test at db:5432/x" in message and "TimeoutError" in message
    assert "0.1s" in message  # how long until the next attempt
    assert isinstance(info.value, ConnectionError)
    clock.now += 0.2
    with pytest.raises(TimeoutError):
        await clients.get()
    assert opener.calls == 2


def window(info: pytest.ExceptionInfo[AdapterUnavailable]) -> float:
    """The "not retrying for another N.Ns" of a fail-fast error."""
    return float(str(info.value).rsplit("another ", 1)[1].rstrip("s"))


async def test_the_backoff_doubles_up_to_the_cap_and_success_resets_it(clock: Clock) -> None:
    opener = Opener()
    opener.release.set()
    clients = per_loop(opener)
    windows = []
    for _ in range(6):
        with pytest.raises(TimeoutError):
            await clients.get()
        with pytest.raises(AdapterUnavailable) as info:
            await clients.get()
        windows.append(window(info))
        clock.now += windows[-1]  # the window is over: the next get tries again
    assert windows == [BACKOFF_FIRST, 2.0, 4.0, 8.0, BACKOFF_MAX, BACKOFF_MAX]
    assert opener.calls == 6
    opener.fail = False
    assert await clients.get() == "client-7"
    await clients.aclose()
    # After a success, the next failure starts from the first window again.
    opener.fail = True
    with pytest.raises(TimeoutError):
        await clients.get()
    with pytest.raises(AdapterUnavailable) as info:
        await clients.get()
    assert window(info) == BACKOFF_FIRST


async def test_a_cancelled_caller_does_not_cancel_the_shared_open(clock: Clock) -> None:
    opener = Opener()
    opener.fail = False
    clients = per_loop(opener)
    impatient = asyncio.ensure_future(clients.get())
    patient = asyncio.ensure_future(clients.get())
    await asyncio.sleep(0)
    impatient.cancel()
    await asyncio.sleep(0)
    opener.release.set()
    assert await patient == "client-1"
    assert impatient.cancelled()
    assert await clients.get() == "client-1" and opener.calls == 1
    await clients.aclose()
    assert opener.closed == ["client-1"]


async def test_aclose_stops_an_open_in_flight(clock: Clock) -> None:
    opener = Opener()
    clients = per_loop(opener)
    waiter = asyncio.ensure_future(clients.get())
    while opener.calls == 0:  # the attempt has started and waits for the server
        await asyncio.sleep(0)
    await clients.aclose()
    with pytest.raises(AdapterUnavailable, match="closed while connecting"):
        await waiter
    # The adapter is usable again afterwards (a new open, not a backoff).
    opener.fail = False
    opener.release.set()
    assert await clients.get() == "client-2"
    await clients.aclose()
