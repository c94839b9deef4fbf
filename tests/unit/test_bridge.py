"""The sync/async bridge: abandoned steps are closed at once, and forked children work."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
import warnings
from collections.abc import Awaitable, Generator
from typing import Any

import pytest

from authsession import _bridge
from authsession._bridge import LoopThread, drive_async, drive_sync, run_sync

posix_only = pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "SIGALRM"), reason="needs os.fork and SIGALRM"
)


class Interrupt(BaseException):
    """Stands in for KeyboardInterrupt / SystemExit without alarming pytest."""


def steps_with_cleanup(log: list[str], waits_on: Awaitable[Any]) -> Generator[Any, Any, str]:
    try:
        yield waits_on
        return "finished"
    finally:
        log.append("cleaned up")


# --------------------------------------------------------------------------- #
# Abandoned steps are closed now, not when the garbage collector frees them
# --------------------------------------------------------------------------- #


async def test_a_cancelled_async_drive_closes_its_steps_at_once() -> None:
    log: list[str] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    steps = steps_with_cleanup(log, never)  # held here, as a traceback or cache might
    task = asyncio.ensure_future(drive_async(steps))
    await asyncio.sleep(0.01)
    assert log == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["cleaned up"]
    assert steps.gi_frame is None  # closed, not merely suspended


def test_an_interrupted_sync_drive_closes_its_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(awaitable: Any) -> Any:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise Interrupt

    monkeypatch.setattr(_bridge, "run_sync", interrupted)
    log: list[str] = []
    steps = steps_with_cleanup(log, asyncio.sleep(0))
    with pytest.raises(Interrupt):
        drive_sync(steps)
    assert log == ["cleaned up"]
    assert steps.gi_frame is None


def test_exceptions_still_reach_the_steps_and_they_finish_normally() -> None:
    async def fails() -> None:
        raise ValueError("adapter down")

    def steps() -> Generator[Any, Any, str]:
        try:
            yield fails()
        except ValueError as exc:
            return f"handled {exc}"
        return "not reached"

    assert drive_sync(steps()) == "handled adapter down"
    assert asyncio.run(drive_async(steps())) == "handled adapter down"


_STILL_WAITING: Any = object()


def stubborn_steps(log: list[str], waits_on: Awaitable[Any]) -> Generator[Any, Any, None]:
    """Steps that mishandle GeneratorExit: they try to go on waiting."""
    try:
        yield waits_on
    except GeneratorExit:
        log.append("asked to close")
        yield _STILL_WAITING


def raising_steps(waits_on: Awaitable[Any]) -> Generator[Any, Any, None]:
    try:
        yield waits_on
    finally:
        raise RuntimeError("cleanup failed")


async def test_misbehaving_steps_cannot_mask_a_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    log: list[str] = []
    for steps in (stubborn_steps(log, loop.create_future()), raising_steps(loop.create_future())):
        task = asyncio.ensure_future(drive_async(steps))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert log == ["asked to close"]
    failures = [r for r in caplog.records if "abandoned" in r.getMessage()]
    assert len(failures) == 2 and all(r.levelno == logging.WARNING for r in failures)


def test_misbehaving_steps_cannot_mask_an_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(awaitable: Any) -> Any:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise Interrupt

    monkeypatch.setattr(_bridge, "run_sync", interrupted)
    log: list[str] = []
    with pytest.raises(Interrupt):
        drive_sync(stubborn_steps(log, asyncio.sleep(0)))
    with pytest.raises(Interrupt):
        drive_sync(raising_steps(asyncio.sleep(0)))
    assert log == ["asked to close"]


@posix_only
def test_an_interrupted_run_sync_cancels_its_coroutine() -> None:
    """Ctrl-C while a sync caller waits: the coroutine must not run on, unobserved."""
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupt):
            run_sync(slow())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert cancelled.wait(5)


# --------------------------------------------------------------------------- #
# Fork safety
# --------------------------------------------------------------------------- #


def _fork_while_held(*locks: threading.Lock) -> int:
    """Fork while another thread of this process holds ``locks``; the child's pid."""
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        for lock in locks:
            lock.acquire()
        held.set()
        release.wait()
        for lock in locks:
            lock.release()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
            pid = os.fork()
    finally:
        if pid != 0:
            release.set()
            holder.join(5)
    return pid


def _child_exit_status(pid: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung")


@posix_only
def test_a_forked_child_gets_working_loop_threads_even_if_a_parent_thread_held_their_locks() -> (
    None
):
    mine = LoopThread("test-loop-thread")
    mine.loop()  # running in the parent, as the bridge and the bus are
    run_sync(asyncio.sleep(0))  # the bridge's own loop, too
    pid = _fork_while_held(mine._lock, _bridge._LOOP._lock)
    if pid == 0:  # the child: report by exit code only, never return into pytest
        code = 1
        try:
            signal.alarm(10)  # a deadlock ends as SIGALRM, not a hung test run
            future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, "ok"), mine.loop())
            assert future.result(timeout=5) == "ok"
            assert mine.on_loop_thread() is False
            assert run_sync(asyncio.sleep(0, 42)) == 42
            code = 0
        finally:
            os._exit(code)
    status = _child_exit_status(pid)
    assert os.WIFEXITED(status), f"the child was killed by signal {os.WTERMSIG(status)} (hung)"
    assert os.WEXITSTATUS(status) == 0
    # The parent's loops are untouched by the child.
    assert run_sync(asyncio.sleep(0, "parent")) == "parent"
    assert asyncio.run_coroutine_threadsafe(asyncio.sleep(0, 1), mine.loop()).result(5) == 1
