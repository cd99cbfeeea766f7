"""The gateway process's one thread for database work started from the event loop.

Why one: the loop's default executor (and ``sync_to_async(thread_sensitive=False)``) runs each
call on any of up to six threads, and Django opens a connection per thread and keeps it: up to
six idle PostgreSQL connections per worker process for a route-table rebuild now and then,
config-version checks without Redis, budget refreshes and the in-process usage writer. On one
thread the process holds one connection, checked before each use (``close_old_connections``)
and closed at shutdown. The work is background work (the request path reads memory), so
queueing it behind itself costs no request anything.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None
#: What the database thread runs now and since when (monotonic), and the thread's id: read by
#: :func:`busy_report` when work queued behind it is late.
_busy: tuple[str, float] | None = None
_thread_id: int | None = None


def _get_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="gateway-db"
            )
        return _executor


def _checked(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    from django.db import close_old_connections

    global _busy, _thread_id
    _thread_id = threading.get_ident()
    _busy = (getattr(fn, "__qualname__", type(fn).__name__), time.monotonic())
    try:
        # Drop a connection that went bad (database restarted) or outlived CONN_MAX_AGE.
        close_old_connections()
        return fn(*args, **kwargs)
    finally:
        _busy = None


def busy_report() -> str:
    """What the database thread is doing, for how long, how much waits behind it, and where
    its call is (the innermost frames): logged when work queued on the thread is late, so a
    slow query or a lock wait names itself."""
    busy, executor = _busy, _executor
    queued = executor._work_queue.qsize() if executor is not None else 0
    if busy is None:
        return f"idle, {queued} queued"
    name, since = busy
    frame = sys._current_frames().get(_thread_id) if _thread_id is not None else None
    where = "".join(traceback.format_stack(frame)[-6:]) if frame is not None else ""
    return f"running {name} for {time.monotonic() - since:.1f} s, {queued} queued\n{where}"


async def run_db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` on the database thread, awaited without blocking the loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_get_executor(), lambda: _checked(fn, *args, **kwargs))


def close_connections() -> None:
    """Close the database thread's connections (process shutdown, end of a test session)."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is None:
        return
    from django.db import connections

    executor.submit(connections.close_all).result()
    executor.shutdown(wait=True)


async def aclose_connections() -> None:
    """:func:`close_connections` from the event loop."""
    await asyncio.get_running_loop().run_in_executor(None, close_connections)
