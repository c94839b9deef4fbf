"""One resolution routine for sync and async callers.

Resolution steps are written once, as a generator that yields only when it
meets an awaitable (an async callback, an adapter coroutine). The async
driver awaits it on the caller's loop; the sync driver runs it on one
long-lived background loop, so async adapters keep their connection pools
between calls. Steps that meet no awaitable (the jwt strategy with plain
callbacks) never touch an event loop at all.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")
Steps = Generator[Awaitable[Any], Any, T]


def maybe_await(value: Any) -> Generator[Awaitable[Any], Any, Any]:
    """``result = yield from maybe_await(func(...))`` inside a steps generator."""
    if inspect.isawaitable(value):
        value = yield value
    return value


async def drive_async(steps: Steps[T]) -> T:
    try:
        awaitable = steps.send(None)
        while True:
            try:
                result = await awaitable
            except Exception as exc:  # hand it to the steps, which may handle it
                awaitable = steps.throw(exc)
            else:
                awaitable = steps.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


def drive_sync(steps: Steps[T]) -> T:
    try:
        awaitable = steps.send(None)
        while True:
            try:
                result = run_sync(awaitable)
            except Exception as exc:
                awaitable = steps.throw(exc)
            else:
                awaitable = steps.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


class LoopThread:
    """One daemon thread running an event loop, started on first use (and again
    if it died, e.g. in a forked child). The sync bridge and the invalidation
    bus each own one."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def on_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread


_LOOP = LoopThread("authsession-sync-bridge")


def bridge_loop() -> asyncio.AbstractEventLoop:
    """The event loop sync callers' coroutines run on (adapters keep their pools there)."""
    return _LOOP.loop()


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def run_sync(awaitable: Awaitable[T]) -> T:
    """Run an awaitable to completion from sync code, on the shared bridge loop."""
    if _LOOP.on_loop_thread():
        raise RuntimeError(
            "a sync authsession call was made from async code running on its own bridge "
            "loop; use the async API (await get_server_session(...)) there"
        )
    coro: Coroutine[Any, Any, T] = (
        awaitable if inspect.iscoroutine(awaitable) else _await(awaitable)
    )
    return asyncio.run_coroutine_threadsafe(coro, _LOOP.loop()).result()
