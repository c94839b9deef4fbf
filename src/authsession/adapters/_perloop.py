"""One client per event loop, for async drivers whose connections are loop-bound.

psycopg's ``AsyncConnectionPool`` and redis-py's asyncio client keep sockets
and worker tasks on the loop that opened them. An adapter may be awaited from
an application's loop and from the sync bridge's background loop in the same
process, so it keeps one client per running loop, opened lazily on first use
there and closed by ``aclose``.

Opening can fail slowly: psycopg-pool retries an unreachable server until its
timeout. So on each loop there is at most one open in flight, and every call
arriving meanwhile waits for that same attempt and gets its outcome -- with
the server down, N concurrent requests wait one timeout, not N of them. A
failed open is remembered for a backoff (1 s, doubling per failure in a row up
to 10 s) during which calls fail at once with :class:`AdapterUnavailable`
instead of queueing another slow attempt; the first call after it tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from ._interface import AdapterUnavailable

T = TypeVar("T")

#: How long ``aclose`` waits for a client living on another (running) loop to close.
_FOREIGN_CLOSE_TIMEOUT = 5.0

#: Fail-fast window after a failed open: first, and the cap it doubles up to.
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 10.0

# The clock, a module global so tests can move time instead of sleeping.
_now = time.monotonic


class _Slot(Generic[T]):
    """One loop's client, or the open in flight, or the last failure. Only that
    loop's thread touches a slot, so it needs no lock."""

    __slots__ = ("backoff", "error", "opening", "retry_at", "value")

    def __init__(self) -> None:
        self.value: T | None = None
        self.opening: asyncio.Task[T] | None = None
        self.error = ""  # why the last open failed (text: no traceback kept alive)
        self.retry_at = 0.0  # no new open before this (monotonic)
        self.backoff = 0.0  # the window the last failure set


class PerLoop(Generic[T]):
    def __init__(
        self,
        open: Callable[[], Awaitable[T]],
        close: Callable[[T], Coroutine[Any, Any, None]],
        *,
        describe: str = "the server",
    ) -> None:
        self._open = open
        self._close = close
        self._describe = describe  # "PostgreSQL at host:port/db": never a password
        self._guard = threading.Lock()
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Slot[T]] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        with self._guard:
            slot = self._slots.get(loop)
            if slot is None:
                slot = self._slots[loop] = _Slot()
        if slot.value is not None:
            return slot.value
        if slot.opening is None:
            now = _now()
            if now < slot.retry_at:
                raise self._backing_off(slot, now)
            slot.opening = loop.create_task(self._open_into(slot))
            slot.opening.add_done_callback(_retrieve)
        opening = slot.opening
        try:
            # shield: a caller that gives up (a cancelled request) does not
            # cancel the attempt the other callers are waiting for.
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            if opening.cancelled():  # aclose() stopped the attempt, not our caller
                raise AdapterUnavailable(
                    f"{self._describe}: the adapter was closed while connecting"
                ) from None
            raise

    async def _open_into(self, slot: _Slot[T]) -> T:
        try:
            value = await self._open()
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                slot.backoff = min(max(slot.backoff * 2, BACKOFF_FIRST), BACKOFF_MAX)
                slot.retry_at = _now() + slot.backoff
                slot.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            slot.opening = None
        slot.value, slot.error, slot.backoff, slot.retry_at = value, "", 0.0, 0.0
        return value

    def _backing_off(self, slot: _Slot[T], now: float) -> AdapterUnavailable:
        return AdapterUnavailable(
            f"{self._describe} is unavailable: connecting failed ({slot.error}); not retrying "
            f"for another {slot.retry_at - now:.1f}s"
        )

    async def aclose(self) -> None:
        """Close every loop's client: this loop's here, others' on their own loop.

        An open still in flight is cancelled (the opener releases what it made).
        """
        current = asyncio.get_running_loop()
        with self._guard:
            slots = list(self._slots.items())
            self._slots.clear()
        for loop, slot in slots:
            if slot.value is None and slot.opening is None:
                continue
            if loop is current:
                await self._shutdown(slot)
            elif loop.is_running() and not loop.is_closed():
                future = asyncio.run_coroutine_threadsafe(self._shutdown(slot), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(future), _FOREIGN_CLOSE_TIMEOUT)
            # else: that loop is stopped; its sockets went with it.

    async def _shutdown(self, slot: _Slot[T]) -> None:
        """On the slot's own loop: stop an open in flight, close the client."""
        opening = slot.opening
        if opening is not None:
            opening.cancel()
            await asyncio.wait({opening})  # never raises; the opener cleans up
        value, slot.value = slot.value, None
        if value is not None:
            await self._close(value)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a failed open's exception as seen: every waiter may have gone (cancelled)."""
    if not task.cancelled():
        task.exception()
