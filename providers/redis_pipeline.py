"""A leaner non-transactional pipeline for the asyncio client of one server or a Sentinel
master: the request path's batches (route views, acquires, releases, usage appends) run on it.

Why: redis-py's asyncio ``Pipeline.execute`` around the one write and the N reads it needs
also folds in its HIMPORT bookkeeping and its observability hooks, wraps every reply's read in
a timeout of its own (a timer scheduled and cancelled per command) and resets the pipeline
through an awaited call; together more than the reads themselves (py-spy, bench c=16).
:meth:`LeanPipeline.execute` sends the packed commands with the connection's own
``send_packed_command`` (connect, health check, write timeout), then reads the replies under
one timeout of the connection's ``socket_timeout`` for all of them, with redis-py's retry
policy around the whole exchange as redis-py applies it. Transactions, ``WATCH`` and pipelines
with registered scripts take redis-py's path unchanged.

Replies are what redis-py's pipeline returns: the client's response callbacks applied,
``ResponseError`` (``NOSCRIPT`` as ``NoScriptError``) as a value, or raised with
``raise_on_error``. ``tests/providers/test_redis_pipeline.py`` holds it to redis-py's answers
against a real Redis, a reply that never comes included.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import EMPTY_RESPONSE, NEVER_DECODE, Pipeline
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Options a command carries for redis-py's reply handling, not for its callback.
_NOT_FOR_CALLBACKS = frozenset(("keys", NEVER_DECODE, EMPTY_RESPONSE))


class LeanPipeline(Pipeline):
    """redis-py's asyncio pipeline, executed in one write and one timed read of the replies
    when it is not a transaction (see the module docstring)."""

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        if self.is_transaction or self.explicit_transaction or self.watching or self.scripts:
            return await super().execute(raise_on_error)
        stack, self.command_stack = self.command_stack, []
        if not stack:
            return []
        pool = self.connection_pool
        conn = await pool.get_connection()
        try:
            replies: list[Any] = await conn.retry.call_with_retry(
                lambda: _exchange(conn, stack, self.response_callbacks),
                lambda error: conn.disconnect(),
            )
        finally:
            await pool.release(conn)
        if raise_on_error:
            self.raise_first_error(stack, replies)
        return replies


async def _exchange(conn: Any, stack: list[Any], callbacks: Any) -> list[Any]:
    """Write every command of ``stack``, then read one reply for each."""
    await conn.send_packed_command(conn.pack_commands([args for args, _ in stack]))
    replies: list[Any] = []
    try:
        # One deadline for all the replies: a Redis that stops answering mid-batch fails it
        # after socket_timeout, as a lone command's read would. Cancelled mid-read,
        # read_response disconnects, so no later command reads an earlier one's reply.
        async with asyncio.timeout(conn.socket_timeout):
            for args, options in stack:
                try:
                    reply = await conn.read_response(
                        disable_decoding=NEVER_DECODE in options, timeout=math.inf
                    )
                except ResponseError as error:
                    replies.append(options.get(EMPTY_RESPONSE, error))
                    continue
                callback = callbacks.get(args[0])
                if callback is not None:
                    kept = {k: v for k, v in options.items() if k not in _NOT_FOR_CALLBACKS}
                    reply = callback(reply, **kept)
                    if asyncio.iscoroutine(reply):
                        reply = await reply
                replies.append(reply)
    except TimeoutError:
        raise RedisTimeoutError("Timeout reading a pipeline's replies from Redis") from None
    return replies


class LeanRedis(aioredis.Redis):
    """The asyncio client whose pipelines are :class:`LeanPipeline`."""

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return LeanPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
