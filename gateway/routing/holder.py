"""Holds the process's current route table and refreshes it in the background."""

from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings

from gateway.routing.table import RouteTable, route_table_build
from providers.config_version import config_version_current
from providers.db_thread import run_db

logger = logging.getLogger(__name__)


class RouteTableHolder:
    """The current :class:`RouteTable` of this process.

    ``get()`` returns the table at once. At most every ``GATEWAY_CONFIG_CHECK_INTERVAL``
    seconds it starts a background task that compares the config version and rebuilds on a
    change, so no request ever waits on the database except the very first (cold start).
    """

    def __init__(self) -> None:
        self.table: RouteTable | None = None
        self._last_check = 0.0
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Lock | None = None
        self.auto_refresh = True

    def install(self, table: RouteTable) -> None:
        """Use ``table`` now (startup, tests)."""
        self.table = table
        self._last_check = time.monotonic()

    def reset(self) -> None:
        self.table = None
        self._last_check = 0.0
        self._task = None
        self._first = None
        self.auto_refresh = True

    async def get(self) -> RouteTable:
        table = self.table
        if table is None:
            return await self._cold_start()
        if self.auto_refresh:
            now = time.monotonic()
            if now - self._last_check >= settings.GATEWAY_CONFIG_CHECK_INTERVAL and (
                self._task is None or self._task.done()
            ):
                self._last_check = now
                self._task = asyncio.get_running_loop().create_task(self._refresh())
        return table

    async def _cold_start(self) -> RouteTable:
        if self._first is None:
            self._first = asyncio.Lock()
        async with self._first:
            if self.table is None:
                self.install(await run_db(route_table_build))
        assert self.table is not None
        return self.table

    async def refresh(self, *, force: bool = False) -> RouteTable:
        """Rebuild when the config version moved (or always with ``force``)."""
        current = self.table
        if not force and current is not None:
            version = await config_version_current()
            if version == current.version:
                return current
        table = await run_db(route_table_build)
        self.install(table)
        if current is None or table.version != current.version:
            logger.info("route table rebuilt at config version %s", table.version)
        return table

    async def _refresh(self) -> None:
        try:
            await self.refresh()
        except Exception:
            # Keep serving the last good table; the next check tries again.
            logger.exception("route table refresh failed; keeping the previous table")


route_tables = RouteTableHolder()
