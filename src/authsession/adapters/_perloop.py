"""One client per event loop, for async drivers whose connections are loop-bound.

psycopg's ``AsyncConnectionPool`` and redis-py's asyncio client keep sockets
and worker tasks on the loop that opened them. An adapter may be awaited from
an application's loop and from the sync bridge's background loop in the same
process, so it keeps one client per running loop, opened lazily on first use
there and closed by ``aclose``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: How long ``aclose`` waits for a client living on another (running) loop to close.
_FOREIGN_CLOSE_TIMEOUT = 5.0


class _Slot(Generic[T]):
    __slots__ = ("lock", "value")

    def __init__(self) -> None:
        self.value: T | None = None
        self.lock = asyncio.Lock()  # binds to the loop that first contends for it


class PerLoop(Generic[T]):
    def __init__(
        self, open: Callable[[], Awaitable[T]], close: Callable[[T], Coroutine[Any, Any, None]]
    ) -> None:
        self._open = open
        self._close = close
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
        async with slot.lock:
            if slot.value is None:
                slot.value = await self._open()
            return slot.value

    async def aclose(self) -> None:
        """Close every loop's client: this loop's here, others' on their own loop."""
        current = asyncio.get_running_loop()
        with self._guard:
            slots = list(self._slots.items())
            self._slots.clear()
        for loop, slot in slots:
            value = slot.value
            if value is None:
                continue
            if loop is current:
                await self._close(value)
            elif loop.is_running() and not loop.is_closed():
                future = asyncio.run_coroutine_threadsafe(self._close(value), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(future), _FOREIGN_CLOSE_TIMEOUT)
            # else: that loop is stopped; its sockets went with it.
