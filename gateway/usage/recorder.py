"""Turn usage events into priced UsageRecords: idempotent, in bulk, acknowledged after commit.

Used by the drain task (Redis stream), by the in-process writer (no Redis) and for spool files
of dead processes. Every path ends in :func:`usage_events_record`, whose unique ``request_id``
plus an insert that skips conflicts makes any redelivery a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import orjson
import redis
from django.conf import settings
from django.db import transaction

from gateway.keys.models import VirtualKey
from gateway.usage.inserts import usage_rows_insert
from gateway.usage.models import UsageRecord
from gateway.usage.spool import orphans_claim
from mappings.models import ModelProviderMapping
from mappings.selectors import PriceBook, price_book_load
from mappings.services import usage_cost_compute
from providers.models import Provider, ProviderKeyCredential
from providers.redis_conn import sync_redis

logger = logging.getLogger(__name__)

DEAD_LETTER_SUFFIX = ":dead"
_FIELD = b"e"


def _text(value: Any, limit: int) -> str:
    return str(value or "")[:limit]


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _cost(event: Mapping[str, Any], book: PriceBook, at: datetime) -> Decimal | None:
    """Price in effect at request time; ``None`` (unpriced) when tokens were used unpriced.

    A request that used no tokens (rejected before or by the upstream) costs exactly 0 whether
    or not a price exists: there is nothing unknown about it, so it is not flagged unpriced.
    """
    prompt = _count(event.get("prompt_tokens"))
    completion = _count(event.get("completion_tokens"))
    cached = _count(event.get("cached_tokens"))
    price = book.price_at(
        mapping_id=_opt_int(event.get("mapping_id")),
        provider_id=_opt_int(event.get("provider_id")),
        provider_model=str(event.get("provider_model") or ""),
        at=at,
    )
    if price is None:
        return Decimal(0) if prompt == 0 and completion == 0 else None
    return usage_cost_compute(
        price=price, prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached
    )


def _existing(model: Any, ids: set[int]) -> set[int]:
    if not ids:
        return set()
    return set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))


def usage_events_record(*, events: Sequence[Mapping[str, Any]]) -> int:
    """Insert one UsageRecord per event not yet recorded; return how many were new.

    One transaction; a handful of queries whatever the batch size (existing ids, prices,
    referenced rows, one bulk insert). References to rows deleted since the request (a virtual
    key, an instance, a key, a mapping) are stored as NULL rather than failing the batch
    forever, with a warning.
    """
    by_id: dict[str, Mapping[str, Any]] = {}
    for event in events:
        rid = _text(event.get("request_id"), 64)
        if rid:
            by_id.setdefault(rid, event)  # a duplicate inside one batch counts once
        else:
            logger.error("usage event without request_id dropped: %r", event)
    if not by_id:
        return 0
    # A redelivered event carries its own created_at, so its earlier copy lies in this range:
    # bounding the lookup by it lets PostgreSQL read only the months concerned (partitions).
    at = {rid: _created_at(e) for rid, e in by_id.items()}
    with transaction.atomic():
        seen = set(
            UsageRecord.objects.filter(
                request_id__in=list(by_id),
                created_at__gte=min(at.values()),
                created_at__lte=max(at.values()),
            ).values_list("request_id", flat=True)
        )
        fresh = [(e, at[rid]) for rid, e in by_id.items() if rid not in seen]
        if not fresh:
            return 0
        refs = {
            name: {int(e[name]) for e, _ in fresh if e.get(name) is not None}
            for name in ("virtual_key_id", "provider_id", "key_id", "mapping_id")
        }
        alive = {
            "virtual_key_id": _existing(VirtualKey, refs["virtual_key_id"]),
            "provider_id": _existing(Provider, refs["provider_id"]),
            "key_id": _existing(ProviderKeyCredential, refs["key_id"]),
            "mapping_id": _existing(ModelProviderMapping, refs["mapping_id"]),
        }
        book = price_book_load(
            mapping_ids=refs["mapping_id"],
            targets={
                (int(e["provider_id"]), str(e.get("provider_model") or ""))
                for e, _ in fresh
                if e.get("provider_id") is not None
            },
        )
        return usage_rows_insert([_row(e, when, alive, book) for e, when in fresh])


def _created_at(event: Mapping[str, Any]) -> datetime:
    """When the request ended, from the event itself (part of the record's unique key, so a
    redelivery lands on the same key). Producers always set it; a malformed event without one
    is recorded now rather than lost."""
    return datetime.fromtimestamp(float(event.get("created_at") or time.time()), tz=UTC)


def _row(
    event: Mapping[str, Any], at: datetime, alive: dict[str, set[int]], book: PriceBook
) -> dict[str, Any]:
    def ref(name: str) -> int | None:
        value = _opt_int(event.get(name))
        if value is not None and value not in alive[name]:
            logger.warning(
                "usage %s: %s=%s no longer exists; recorded as NULL",
                event.get("request_id"),
                name,
                value,
            )
            return None
        return value

    ttft = event.get("ttft_ms")
    return dict(
        request_id=_text(event.get("request_id"), 64),
        created_at=at,
        endpoint=_text(event.get("endpoint"), 32),
        virtual_key_id=ref("virtual_key_id"),
        model_alias=_text(event.get("model_alias"), 200),
        provider_id=ref("provider_id"),
        provider_key_id=ref("key_id"),
        mapping_id=ref("mapping_id"),
        account_group=_opt_int(event.get("account_group")),
        provider_model=_text(event.get("provider_model"), 200),
        stream=bool(event.get("stream")),
        status_code=min(_count(event.get("status_code")), 32767),
        error_type=_text(event.get("error_type"), 64),
        prompt_tokens=_count(event.get("prompt_tokens")),
        completion_tokens=_count(event.get("completion_tokens")),
        cached_tokens=_count(event.get("cached_tokens")),
        latency_ms=float(event.get("latency_ms") or 0.0),
        ttft_ms=float(ttft) if ttft is not None else None,
        attempts=list(event.get("attempts") or []),
        # Priced with the price in effect at request time, the event's own provider instance.
        cost=_cost(event, book, at),
    )


def usage_lines_record(*, lines: Sequence[bytes]) -> int:
    """Record spooled JSON lines (unparseable lines are logged and skipped)."""
    events: list[Mapping[str, Any]] = []
    for line in lines:
        try:
            events.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            logger.error("usage spool: unparseable line dropped: %r", line[:200])
    return usage_events_record(events=events)


# --- the Redis stream -----------------------------------------------------------------------


@dataclass(slots=True)
class DrainResult:
    """What one drain did (for logs, the task's return value and tests)."""

    read: int = 0
    claimed: int = 0
    recorded: int = 0
    dead: int = 0
    spooled: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "read": self.read,
            "claimed": self.claimed,
            "recorded": self.recorded,
            "dead": self.dead,
            "spooled": self.spooled,
        }


def consumer_name() -> str:
    """This worker process's consumer name in the group (host + pid: unique while alive)."""
    return f"{socket.gethostname()}-{os.getpid()}"


def usage_group_ensure(*, client: redis.Redis) -> None:
    """Create the stream and its consumer group if missing (Redis restarted empty, first run)."""
    try:
        client.xgroup_create(
            settings.GATEWAY_USAGE_STREAM, settings.GATEWAY_USAGE_GROUP, id="0", mkstream=True
        )
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _ack(client: redis.Redis, ids: list[bytes]) -> None:
    """After commit: acknowledge and delete, so the stream holds only the unrecorded backlog."""
    stream, group = settings.GATEWAY_USAGE_STREAM, settings.GATEWAY_USAGE_GROUP
    try:
        pipe = client.pipeline(transaction=False)
        pipe.xack(stream, group, *ids)
        pipe.xdel(stream, *ids)
        pipe.execute()
    except redis.RedisError:
        # Recorded but still pending: a later drain claims them, re-inserts nothing, acks.
        logger.warning("usage: could not acknowledge %d recorded entries", len(ids))


# Test seam: called with the parsed events between the read and the insert.
_before_insert: Callable[[list[Mapping[str, Any]]], None] | None = None


def _record_entries(
    client: redis.Redis, entries: list[tuple[bytes, dict[bytes, bytes]]], result: DrainResult
) -> None:
    ids: list[bytes] = []
    events: list[Mapping[str, Any]] = []
    dead: list[tuple[bytes, bytes]] = []
    for entry_id, fields in entries:
        raw = fields.get(_FIELD, b"")
        try:
            events.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            dead.append((entry_id, raw))
        ids.append(entry_id)
    if dead:
        # Unparseable now means unparseable forever: park it for a human instead of letting it
        # be claimed again on every drain.
        pipe = client.pipeline(transaction=False)
        for entry_id, raw in dead:
            pipe.xadd(
                settings.GATEWAY_USAGE_STREAM + DEAD_LETTER_SUFFIX,
                {b"id": entry_id, _FIELD: raw},
            )
        pipe.execute()
        logger.error("usage: %d unparseable stream entries moved to the dead letters", len(dead))
        result.dead += len(dead)
    if _before_insert is not None:
        _before_insert(events)
    with transaction.atomic():
        result.recorded += usage_events_record(events=events)
        transaction.on_commit(partial(_ack, client, ids))


def usage_stream_drain(
    *,
    max_seconds: float | None = None,
    batch_size: int | None = None,
    claim_idle_seconds: float | None = None,
    consumer: str | None = None,
) -> DrainResult:
    """Record the stream's backlog until a read comes back short of a batch (the stream's end
    when it was read: what arrives later waits for the next run) or ``max_seconds`` are spent.

    First claims entries another consumer read but never acknowledged for longer than
    ``claim_idle_seconds`` (it crashed between read and commit), then reads new entries.
    Every batch is inserted in one transaction and acknowledged only after its commit.
    """
    client = sync_redis()
    result = DrainResult()
    if client is None:
        return result
    stream, group = settings.GATEWAY_USAGE_STREAM, settings.GATEWAY_USAGE_GROUP
    batch = batch_size or settings.GATEWAY_USAGE_BATCH
    idle_ms = int(
        1000
        * (
            settings.GATEWAY_USAGE_CLAIM_IDLE_SECONDS
            if claim_idle_seconds is None
            else claim_idle_seconds
        )
    )
    me = consumer or consumer_name()
    deadline = time.monotonic() + (
        settings.GATEWAY_USAGE_DRAIN_SECONDS if max_seconds is None else max_seconds
    )
    usage_group_ensure(client=client)
    claim_from: bytes | str | None = "0-0"
    caught_up = False
    while not caught_up and time.monotonic() < deadline:
        entries: list[Any] = []
        if claim_from is not None:
            reply = client.xautoclaim(
                stream, group, me, min_idle_time=idle_ms, start_id=claim_from, count=batch
            )
            cursor, entries = reply[0], reply[1]
            claim_from = None if cursor in (b"0-0", "0-0") else cursor
            result.claimed += len(entries)
        if not entries:
            if claim_from is not None:
                continue  # more of the pending list to scan
            answer: Any = client.xreadgroup(group, me, {stream: ">"}, count=batch)
            if isinstance(answer, dict):  # RESP3 clients answer {stream: entries}
                entries = next(iter(answer.values()), [])
            else:
                entries = answer[0][1] if answer else []
            # A short read is the stream's end: stop after it rather than chase the tail.
            # Under steady traffic, chasing read a few events per batch for the task's whole
            # time limit, and each batch's fixed queries made a recorded event cost 6x the
            # CPU of one in a full batch (README, "Performance"); the next run takes the rest.
            caught_up = len(entries) < batch
        if not entries:
            break
        result.read += len(entries)
        _record_entries(client, entries, result)
    usage_consumers_prune(client=client, keep=me)
    return result


# Worker processes come and go (each is a consumer named host-pid); forget the ones that have
# nothing pending and have not read for this long, so the group does not grow forever.
CONSUMER_PRUNE_IDLE_SECONDS = 3600.0


def usage_consumers_prune(
    *, client: redis.Redis, keep: str = "", idle_seconds: float = CONSUMER_PRUNE_IDLE_SECONDS
) -> int:
    """Delete idle consumers without pending entries (deleting one loses nothing)."""
    stream, group = settings.GATEWAY_USAGE_STREAM, settings.GATEWAY_USAGE_GROUP
    removed = 0
    consumers: Any = client.xinfo_consumers(stream, group)
    for consumer in consumers:
        name = consumer["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        if name != keep and not consumer["pending"] and consumer["idle"] >= idle_seconds * 1000:
            client.xgroup_delconsumer(stream, group, name)
            removed += 1
    return removed


def usage_orphans_record() -> int:
    """Record the spool files of dead gateway processes straight into the database."""
    total = 0
    for orphan in orphans_claim():
        lines = orphan.lines()
        total += usage_lines_record(lines=lines)
        orphan.remove()
        logger.info("usage: recorded orphan spool %s (%d lines)", orphan.path.name, len(lines))
    return total


def usage_drain() -> DrainResult:
    """What the periodic task does: orphan spools of this host, then the stream."""
    spooled = usage_orphans_record()
    result = usage_stream_drain()
    result.spooled = spooled
    return result
