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
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")
Steps = Generator[Awaitable[Any], Any, T]

log = logging.getLogger("authsession")


def maybe_await(value: Any) -> Generator[Awaitable[Any], Any, Any]:
    """``result = yield from maybe_await(func(...))`` inside a steps generator."""
    if inspect.isawaitable(value):
        value = yield value
    return value


def close_steps(steps: Steps[Any]) -> None:
    """Close steps abandoned by a ``BaseException`` (cancellation, Ctrl-C, exit).

    Their ``finally`` blocks (a circuit breaker freeing its trial slot, a
    pending write released) must run now, not whenever the garbage collector
    gets to a generator some traceback still references. The caller re-raises
    the original exception: steps that misbehave on close (yield again, or
    raise) are logged here and must not replace it.
    """
    try:
        steps.close()
    except Exception:
        log.warning("authsession: a resolution failed while being abandoned", exc_info=True)


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
    except BaseException:  # CancelledError, KeyboardInterrupt, SystemExit
        close_steps(steps)  # a no-op when the steps themselves raised: they are done
        raise


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
    except BaseException:
        close_steps(steps)
        raise


class LoopThread:
    """One daemon thread running an event loop, started on first use (and again
    in a forked child, which has none of its parent's threads). The sync bridge
    and the invalidation bus each own one."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        _LOOP_THREADS.add(self)

    def _forget_after_fork(self) -> None:
        # The child has one thread, the one that forked. A parent thread that
        # held the lock at that moment never releases the child's copy, so the
        # child gets a fresh one. The parent's loop is dropped, not closed:
        # closing it would unregister its self-pipe from the epoll instance the
        # child shares with the parent, breaking the parent's loop.
        self._lock = threading.Lock()
        self._loop = None
        self._thread = None

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


_LOOP_THREADS: weakref.WeakSet[LoopThread] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for loop_thread in list(_LOOP_THREADS):
        loop_thread._forget_after_fork()


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(after_in_child=_after_fork_in_child)

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
    future = asyncio.run_coroutine_threadsafe(coro, _LOOP.loop())
    try:
        return future.result()
    except BaseException:
        # Interrupted while waiting (Ctrl-C, SystemExit): nobody will read
        # the result, so the coroutine must not run on in the background.
        future.cancel()
        raise
