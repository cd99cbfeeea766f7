"""Holds the process's current route table and keeps it at most a bounded time stale.

Revocation contract: a configuration change committed at time T (a key disabled, an alias
added) is applied by every request that starts after ``T + GATEWAY_CONFIG_MAX_STALENESS``.
Two mechanisms keep it, without SQL on a warm request:

* a refresher task per process (started by the ASGI lifespan, or by the first request on an
  event loop without one) polls the cheap version marker several times per staleness window
  (Redis ``GET`` when ``REDIS_URL`` is set, else the database's version row, on the database
  thread) and rebuilds the table when it moved, so the request path normally finds a table
  checked less than a window ago;
* the request path refuses to trust a table whose last successful check *started* more than a
  window ago (the event loop was busy, the refresher fell behind): it runs the same check
  itself, shared by every request waiting at that moment, before serving.

A check that fails (the database or Redis is down) never turns into an error for a warm
process: the request is served from the last good table, and for the next window requests do
not wait on another check while the refresher keeps trying in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from django.conf import settings

from gateway.core.errors import ServiceUnavailable
from gateway.routing.table import RouteTable, route_table_build
from providers.config_version import config_version_current
from providers.db_thread import busy_report, run_db

logger = logging.getLogger(__name__)

#: Polls of the version marker per staleness window (the request path's own check is the
#: fallback, so a poll may be late by up to a window minus one period without a stale answer).
POLLS_PER_WINDOW = 4
#: Longest a request waits for its own check before it is served from the last good table:
#: a slow database must not hold every request (the check carries on in the background).
SYNC_CHECK_WAIT = 2.0
#: ``Retry-After`` of the 503 a process answers while it has never managed to build a table.
COLD_RETRY_AFTER = 5.0


def max_staleness() -> float:
    return max(0.05, float(settings.GATEWAY_CONFIG_MAX_STALENESS))


class RouteTableHolder:
    """The current :class:`RouteTable` of this process (see the module docstring)."""

    def __init__(self) -> None:
        self.table: RouteTable | None = None
        self.auto_refresh = True
        self.checked_at = 0.0  # monotonic start of the last successful version check
        self._failed_at = -1e9  # monotonic end of the last failed check
        self._cold_failed_at = -1e9  # monotonic end of the last failed first build
        self._check: asyncio.Task[RouteTable] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._first: asyncio.Lock | None = None

    def install(self, table: RouteTable) -> None:
        """Use ``table`` now (startup, tests)."""
        self.table = table
        self.checked_at = time.monotonic()

    def reset(self) -> None:
        """Forget the table and stop refreshing (tests). The old refresher task, possibly on
        a loop that is gone, sees it is no longer the current one and ends on its next tick."""
        self.table = None
        self.checked_at = 0.0
        self._failed_at = -1e9
        self._cold_failed_at = -1e9
        self._check = None
        self._refresher = None
        self._first = None
        self.auto_refresh = True

    # -- the request path ---------------------------------------------------------------------
    async def get(self) -> RouteTable:
        """The table to serve this request from: checked less than a window ago, or the last
        good one when the check cannot be done (outage)."""
        table = self.table
        if table is None:
            return await self._cold_start()
        if not self.auto_refresh:
            return table
        self.start_refresher()
        now = time.monotonic()
        window = max_staleness()
        if now - self.checked_at <= window or now - self._failed_at <= window:
            return table
        try:
            return await asyncio.wait_for(asyncio.shield(self._checking()), SYNC_CHECK_WAIT)
        except TimeoutError:
            # A hanging database: the check goes on in the background; requests stop waiting.
            self._failed_at = time.monotonic()
            logger.warning(
                "route table check slower than %s s; serving the last good table; "
                "database thread: %s",
                SYNC_CHECK_WAIT,
                busy_report(),
            )
            return self.table or table
        except Exception:
            # Logged by the check itself; a warm process keeps serving.
            return self.table or table

    async def _cold_start(self) -> RouteTable:
        unavailable = ServiceUnavailable(
            "The gateway cannot read its configuration yet; retry shortly.",
            retry_after=COLD_RETRY_AFTER,
        )
        if time.monotonic() - self._cold_failed_at < 1.0:
            raise unavailable  # the database just failed: do not queue every request on it
        if self._first is None:
            self._first = asyncio.Lock()
        async with self._first:
            if self.table is None:
                try:
                    self.install(await run_db(route_table_build))
                except Exception:
                    self._cold_failed_at = time.monotonic()
                    logger.exception("could not build the route table (cold start)")
                    raise unavailable from None
        if self.auto_refresh:
            self.start_refresher()
        assert self.table is not None
        return self.table

    async def startup(self) -> None:
        """Build the first table and start the refresher (the ASGI lifespan's startup)."""
        try:
            self.install(await run_db(route_table_build))
        except Exception:
            # Serve anyway: requests answer 503 until a build succeeds (database down or not
            # migrated yet), retried on demand.
            logger.exception("could not build the route table at startup")
        self.start_refresher()

    # -- checking -----------------------------------------------------------------------------
    def _checking(self) -> asyncio.Task[RouteTable]:
        """The version check in flight, or a new one: concurrent callers share one."""
        task = self._check
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._check = loop.create_task(self._checked())
            # Waiters may have stopped waiting (timeout): the outcome is logged in _checked.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def _checked(self) -> RouteTable:
        started = time.monotonic()
        try:
            table = await self.refresh()
        except Exception:
            self._failed_at = time.monotonic()
            logger.warning("route table check failed; serving the last good table", exc_info=True)
            raise
        self.checked_at = max(self.checked_at, started)
        return table

    async def refresh(self, *, force: bool = False) -> RouteTable:
        """Rebuild when the config version moved (or always with ``force``)."""
        current = self.table
        if not force and current is not None:
            version = await config_version_current()
            if version == current.version:
                return current
        table = await run_db(route_table_build)
        self.table = table
        if current is None or table.version != current.version:
            logger.info("route table rebuilt at config version %s", table.version)
        return table

    # -- the background refresher -------------------------------------------------------------
    def start_refresher(self) -> None:
        """Run the refresher on the current event loop unless it already runs there."""
        task = self._refresher
        loop = asyncio.get_running_loop()
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._refresher = loop.create_task(self._refresh_forever(), name="route-table-refresher")

    async def stop_refresher(self) -> None:
        """Stop the refresher and any check in flight (lifespan shutdown)."""
        loop = asyncio.get_running_loop()
        for task in (self._refresher, self._check):
            if task is not None and not task.done() and task.get_loop() is loop:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._refresher = None

    async def _refresh_forever(self) -> None:
        me = asyncio.current_task()
        while self._refresher is me:
            await asyncio.sleep(max_staleness() / POLLS_PER_WINDOW)
            if self._refresher is not me or not self.auto_refresh or self.table is None:
                continue
            try:
                await asyncio.shield(self._checking())
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: S110 (logged by the check; try again next period)
                pass


route_tables = RouteTableHolder()
