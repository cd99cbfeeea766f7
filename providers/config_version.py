"""The configuration version: bumped on every config change, polled by gateway processes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis
from django.db import models, transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save

from providers.db_thread import run_db
from providers.models import ConfigVersion
from providers.redis_conn import async_redis, sync_redis

logger = logging.getLogger(__name__)

REDIS_KEY = "gw:config:version"

# Set inside ``config_version_batch``: whether a watched model changed in the block yet.
_batch_changed: ContextVar[list[bool] | None] = ContextVar("config_version_batch", default=None)


def config_version_bump() -> None:
    """Record that routing-relevant configuration changed.

    The database row moves inside the caller's transaction (so a rolled-back import bumps
    nothing); the Redis copy moves after commit, so no process rebuilds from uncommitted data.
    """
    updated = ConfigVersion.objects.filter(pk=1).update(version=F("version") + 1)
    if not updated:
        ConfigVersion.objects.get_or_create(pk=1, defaults={"version": 1})
    transaction.on_commit(_bump_redis)


def _bump_redis() -> None:
    client = sync_redis()
    if client is None:
        return
    try:
        client.incr(REDIS_KEY)
    except redis.RedisError:
        # Processes fall back to the database row when Redis misbehaves; the DB bump happened.
        logger.warning("could not bump the config version in Redis; database row was bumped")


def config_version_db() -> int:
    """The version as the database has it (sync)."""
    row = ConfigVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return int(row or 0)


async def config_version_current() -> str:
    """The version a process compares with its snapshot's (async, request-path safe).

    Redis when configured and answering (a GET, no SQL); otherwise the database row. The value
    is opaque: processes rebuild on any change, including Redis losing the key.
    """
    client = async_redis()
    if client is not None:
        try:
            value = await client.get(REDIS_KEY)
            return "r" + (value.decode() if isinstance(value, bytes) else str(value or 0))
        except (redis.RedisError, OSError):
            logger.debug("config version: Redis unavailable, reading the database")
    return "d" + str(await run_db(config_version_db))


@contextmanager
def config_version_batch() -> Iterator[None]:
    """Within the block, saves and deletes of watched models bump the version once, at its end.

    Use it inside the caller's ``transaction.atomic()`` so the single bump shares the writes'
    transaction. Nothing bumps when nothing changed or the block raises (the transaction rolls
    back). A nested batch joins the outer one.
    """
    if _batch_changed.get() is not None:
        yield
        return
    changed = [False]
    token = _batch_changed.set(changed)
    try:
        yield
    finally:
        _batch_changed.reset(token)
    if changed[0]:
        config_version_bump()


def _on_change(sender: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):  # loaddata
        return
    changed = _batch_changed.get()
    if changed is not None:
        changed[0] = True
        return
    config_version_bump()


def watch(model: type[models.Model]) -> None:
    """Bump the config version whenever ``model`` is saved or deleted."""
    uid = f"config-version-{model._meta.label}"
    post_save.connect(_on_change, sender=model, dispatch_uid=uid + "-save")
    post_delete.connect(_on_change, sender=model, dispatch_uid=uid + "-delete")


def config_version_current_sync() -> str:
    """Sync twin of :func:`config_version_current` (same value format), for table builds."""
    client = sync_redis()
    if client is not None:
        try:
            value = client.get(REDIS_KEY)
            return "r" + (value.decode() if isinstance(value, bytes) else str(value or 0))
        except redis.RedisError:
            logger.debug("config version: Redis unavailable, reading the database")
    return "d" + str(config_version_db())
