"""The over-budget state of this process: read on every request from memory, no SQL.

Refreshed in the background at most every ``GATEWAY_BUDGET_REFRESH_SECONDS`` (like the route
table holder): from the Redis set the budget task publishes, or, without Redis (or before the
task has ever run), by computing spend from the database in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis
from django.conf import settings

from gateway.core.errors import BudgetExceeded
from gateway.routing.table import VirtualKeySnapshot
from gateway.usage.budgets import CHECKED_KEY, OVER_KEY, budget_over_key_ids
from providers.db_thread import run_db
from providers.redis_conn import async_redis

logger = logging.getLogger(__name__)


class BudgetStateHolder:
    """Which virtual keys are over budget, as last seen."""

    def __init__(self) -> None:
        self.over: frozenset[int] = frozenset()
        self.loaded = False
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Lock | None = None

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    async def check(self, vkey: VirtualKeySnapshot) -> None:
        """Raise :class:`BudgetExceeded` when ``vkey`` is over its budget."""
        if vkey.budget_amount is None:
            return  # no budget: nothing to look at
        if not self.loaded:
            await self._cold_start()
        elif time.monotonic() - self._last >= settings.GATEWAY_BUDGET_REFRESH_SECONDS and (
            self._task is None or self._task.done()
        ):
            self._last = time.monotonic()
            self._task = asyncio.get_running_loop().create_task(self._refresh_quietly())
        if vkey.id in self.over:
            raise BudgetExceeded(f"The budget of this API key ({vkey.budget_period}) is exhausted.")

    async def _cold_start(self) -> None:
        if self._first is None:
            self._first = asyncio.Lock()
        async with self._first:
            if not self.loaded:
                await self._refresh_quietly()
                # Even after a failure: serve (fail open) and retry after the interval rather
                # than making every request wait on a broken store.
                self.loaded = True

    async def refresh(self) -> frozenset[int]:
        """Reload the state now (lifespan startup, tests)."""
        over: frozenset[int] | None = None
        client = async_redis()
        if client is not None:
            try:
                pipe = client.pipeline(transaction=False)
                pipe.smembers(OVER_KEY)
                pipe.exists(CHECKED_KEY)
                members, checked = await pipe.execute()
                if checked:
                    over = frozenset(int(m) for m in members)
            except (redis.RedisError, OSError):
                logger.debug("budget state: Redis unavailable, computing from the database")
        if over is None:
            over = await run_db(budget_over_key_ids)
        self.over = over
        self.loaded = True
        self._last = time.monotonic()
        return over

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception:
            self._last = time.monotonic()
            logger.exception("budget state refresh failed; keeping the previous state")


budget_state = BudgetStateHolder()
