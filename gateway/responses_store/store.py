"""The response store: Responses API answers kept per virtual key, for a bounded time.

A record is a response's ``Response`` object and the input items it answered (the whole
conversation before it, instructions excepted, as OpenAI does not carry instructions over),
so a continuation needs one read however long the conversation is. Records are scoped to the
virtual key that created them (another key reads nothing), live
``GATEWAY_RESPONSES_TTL_SECONDS``, and one over ``GATEWAY_RESPONSES_MAX_BYTES`` is not stored.

In Redis (``gw:resp:<id>``, expiring by itself) when ``REDIS_URL`` is set, else in the database
through the gateway's database thread (never SQL on the event loop), where expired rows are
pruned at most once a minute and at most ``GATEWAY_RESPONSES_MAX_ROWS`` rows are kept. A store
that fails (Redis down) is logged and reads as empty: the request path never fails for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from providers.db_thread import run_db
from providers.redis_conn import async_redis

logger = logging.getLogger(__name__)

REDIS_PREFIX = "gw:resp:"
PRUNE_EVERY = 60.0  # seconds between two prunes of the database form, per process


@dataclass(slots=True)
class Record:
    """A stored response and the input items it answered (oldest first)."""

    response: dict[str, Any]
    items: list[dict[str, Any]]

    def conversation(self) -> list[dict[str, Any]]:
        """The items a continuation starts from: the inputs, then this response's output."""
        output = self.response.get("output")
        return [*self.items, *(output if isinstance(output, list) else [])]


def _encode(key_id: int, record: Record) -> bytes:
    return orjson.dumps({"key": key_id, "response": record.response, "items": record.items})


def _decode(raw: bytes | str, key_id: int) -> Record | None:
    data = orjson.loads(raw)
    if not isinstance(data, dict) or data.get("key") != key_id:
        return None  # another key's record reads as missing
    return Record(response=data.get("response") or {}, items=data.get("items") or [])


async def save(response_id: str, key_id: int, record: Record) -> bool:
    """Store ``record`` under ``response_id`` for ``key_id``; False when not stored."""
    blob = _encode(key_id, record)
    if len(blob) > settings.GATEWAY_RESPONSES_MAX_BYTES:
        logger.warning(
            "response %s not stored: %d bytes is over GATEWAY_RESPONSES_MAX_BYTES",
            response_id,
            len(blob),
        )
        return False
    ttl = settings.GATEWAY_RESPONSES_TTL_SECONDS
    client = async_redis()
    try:
        if client is not None:
            await client.set(REDIS_PREFIX + response_id, blob, ex=ttl)
        else:
            await run_db(_db_save, response_id, key_id, blob, ttl)
    except Exception:
        logger.exception("response %s could not be stored", response_id)
        return False
    return True


async def load(response_id: str, key_id: int) -> Record | None:
    """The record ``key_id`` stored under ``response_id``, or None (unknown, expired, another
    key's, or the store failing)."""
    client = async_redis()
    try:
        raw: bytes | str | None
        if client is not None:
            raw = await client.get(REDIS_PREFIX + response_id)
        else:
            raw = await run_db(_db_load, response_id)
        return _decode(raw, key_id) if raw else None
    except Exception:
        logger.exception("response %s could not be read", response_id)
        return None


async def delete(response_id: str, key_id: int) -> bool:
    """Delete ``key_id``'s record ``response_id``; False when there was none."""
    if await load(response_id, key_id) is None:
        return False
    client = async_redis()
    if client is not None:
        return bool(await client.delete(REDIS_PREFIX + response_id))
    return await run_db(_db_delete, response_id, key_id)


# -- the database form (run on the database thread) ---------------------------------------------
_prune_lock = threading.Lock()
_next_prune = 0.0


def _db_save(response_id: str, key_id: int, blob: bytes, ttl: int) -> None:
    from gateway.responses_store.models import StoredResponse

    now = timezone.now()
    StoredResponse.objects.update_or_create(
        id=response_id,
        defaults={
            "key_id": key_id,
            "created_at": now,
            "expires_at": now + dt.timedelta(seconds=ttl),
            "data": blob,
        },
    )
    _db_prune_if_due(now)


def _db_load(response_id: str) -> bytes | None:
    from gateway.responses_store.models import StoredResponse

    row = (
        StoredResponse.objects.filter(id=response_id, expires_at__gt=timezone.now())
        .values_list("data", flat=True)
        .first()
    )
    return bytes(row) if row is not None else None


def _db_delete(response_id: str, key_id: int) -> bool:
    from gateway.responses_store.models import StoredResponse

    deleted, _ = StoredResponse.objects.filter(id=response_id, key_id=key_id).delete()
    return deleted > 0


def _db_prune_if_due(now: dt.datetime) -> None:
    global _next_prune
    with _prune_lock:
        if time.monotonic() < _next_prune:
            return
        _next_prune = time.monotonic() + PRUNE_EVERY
    prune(now)


def prune(now: dt.datetime | None = None) -> int:
    """Delete expired rows and the oldest beyond ``GATEWAY_RESPONSES_MAX_ROWS``; the count."""
    from gateway.responses_store.models import StoredResponse

    now = now or timezone.now()
    deleted, _ = StoredResponse.objects.filter(expires_at__lte=now).delete()
    limit = settings.GATEWAY_RESPONSES_MAX_ROWS
    cutoff = list(
        StoredResponse.objects.order_by("-created_at").values_list("created_at", flat=True)[
            limit : limit + 1
        ]
    )
    if cutoff:
        extra, _ = StoredResponse.objects.filter(created_at__lte=cutoff[0]).delete()
        deleted += extra
    return deleted
