"""The process's database thread: background database work from the event loop shares one
thread and so one connection (the default executor opened one per thread, up to six)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.db import connection

from providers import db_thread
from providers.config_version import config_version_db
from providers.models import Provider


def where() -> tuple[str, int]:
    """The calling thread and its database connection, after a real query."""
    Provider.objects.count()
    assert connection.connection is not None
    return threading.current_thread().name, id(connection.connection)


@pytest.mark.django_db(transaction=True)
def test_work_from_any_loop_shares_one_thread_and_connection() -> None:
    async def burst() -> list[tuple[str, int]]:
        # Concurrent calls too: they queue on the one thread instead of fanning out.
        out = list(await asyncio.gather(*(db_thread.run_db(where) for _ in range(8))))
        await db_thread.run_db(config_version_db)
        return out

    seen = asyncio.run(burst()) + asyncio.run(burst())  # two event loops, one thread
    assert len(set(seen)) == 1
    [(name, _)] = set(seen)
    assert name.startswith("gateway-db") and name != threading.current_thread().name


@pytest.mark.django_db(transaction=True)
def test_close_connections_closes_the_threads_connection() -> None:
    def connection_of_db_thread() -> object:
        Provider.objects.exists()
        return connection.connection

    async def run() -> object:
        return await db_thread.run_db(connection_of_db_thread)

    first = asyncio.run(run())
    db_thread.close_connections()
    second = asyncio.run(run())
    assert first is not second  # a new connection (on a new thread) after the close
    closed = getattr(first, "closed", None)
    if closed is not None:  # psycopg: a closed connection says so
        assert closed
    else:  # sqlite3: a closed connection refuses to work
        with pytest.raises(Exception, match="closed"):
            first.execute("select 1")  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_busy_report_names_the_call_its_age_and_what_waits_behind_it() -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow_call() -> None:
        entered.set()
        release.wait(10)

    def quick_call() -> None:
        return None

    async def run() -> tuple[str, str]:
        slow = asyncio.ensure_future(db_thread.run_db(slow_call))
        queued = asyncio.ensure_future(db_thread.run_db(quick_call))
        await asyncio.to_thread(entered.wait, 10)
        await asyncio.sleep(0.05)
        busy = db_thread.busy_report()
        release.set()
        await asyncio.gather(slow, queued)
        return busy, db_thread.busy_report()

    busy, after = asyncio.run(run())
    assert busy.startswith("running test_busy_report_names_the_call_its_age_and_what_waits_")
    assert "slow_call for 0." in busy and ", 1 queued" in busy
    assert "release.wait(10)" in busy  # the frame the thread is blocked in
    assert after == "idle, 0 queued"
