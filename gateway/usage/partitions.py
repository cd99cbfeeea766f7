"""Monthly range partitions of the usage table on PostgreSQL (declarative partitioning).

At 100 requests/s the usage table gains ~260M rows a month. Partitioned by month on
``created_at``, a month is one table: reports and the request log prune to the months they
read, and retention drops a month in one ``DROP TABLE`` instead of deleting rows.

Layout: ``gateway_usagerecord`` is the partitioned parent; ``gateway_usagerecord_pYYYYMM``
holds ``[first of month, first of next month)`` in UTC; ``gateway_usagerecord_default`` takes
any row outside the months that exist (a clock far off, a month not created ahead yet), so an
insert never fails for want of a partition. When a month is created later, its rows move out of
the default partition in the same transaction.

The primary key is ``(id, created_at)`` and the idempotency key ``(request_id, created_at)``:
PostgreSQL requires the partition key in every unique constraint. That is still exact across
partitions because ``created_at`` is part of the usage event itself (set when the request
ended, carried in the payload): a redelivered event has the same ``request_id`` *and* the same
``created_at``, so it hits the same partition and the same unique key. Django keeps ``id`` as
the model's primary key; ids stay unique (one identity sequence for the whole table).

SQLite (and an unconverted database) keeps one plain table: every function here is a no-op
there and says so by returning an empty result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

logger = logging.getLogger(__name__)

TABLE = "gateway_usagerecord"
DEFAULT_PARTITION = f"{TABLE}_default"


@dataclass(frozen=True, slots=True)
class Partition:
    """One month's partition: rows with ``start <= created_at < end`` (UTC)."""

    name: str
    start: datetime
    end: datetime


def month_start(day: date) -> datetime:
    """Midnight UTC on the first of ``day``'s month."""
    return datetime(day.year, day.month, 1, tzinfo=UTC)


def month_add(start: datetime, months: int) -> datetime:
    """The first of the month ``months`` after ``start``'s."""
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"{TABLE}_p{start:%Y%m}"


def is_partitioned(conn: BaseDatabaseWrapper | None = None) -> bool:
    """Whether the usage table is a partitioned table (PostgreSQL after the migration)."""
    conn = conn or connection
    if conn.vendor != "postgresql":
        return False
    with conn.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def partitions_list() -> list[Partition]:
    """The month partitions, oldest first (the default partition is not listed); none for a
    plain table, which has no partitions to list."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s) ORDER BY c.relname",
            [TABLE],
        )
        names = [name for (name,) in cursor.fetchall()]
    out = []
    for name in names:
        if name == DEFAULT_PARTITION:
            continue
        start = datetime.strptime(name.removeprefix(f"{TABLE}_p"), "%Y%m").replace(tzinfo=UTC)
        out.append(Partition(name=name, start=start, end=month_add(start, 1)))
    return out


def partitions_ensure(*, ahead: int, today: date | None = None) -> list[str]:
    """Create the partitions of this month and the ``ahead`` months after it; return the names
    created. Idempotent. Rows already in the default partition for a new month move into it.
    """
    if not is_partitioned():
        return []
    first = month_start(today or datetime.now(tz=UTC).date())
    existing = {p.name for p in partitions_list()}
    created = []
    for offset in range(ahead + 1):
        start = month_add(first, offset)
        if partition_name(start) not in existing:
            partition_create(start=start)
            created.append(partition_name(start))
    if created:
        logger.info("usage partitions created: %s", ", ".join(created))
    return created


@transaction.atomic
def partition_create(*, start: datetime) -> str:
    """Create the month partition starting at ``start`` (first of a month, UTC)."""
    end = month_add(start, 1)
    name = partition_name(start)
    ident = sql.Identifier(name)
    parent, default = sql.Identifier(TABLE), sql.Identifier(DEFAULT_PARTITION)
    bounds = sql.SQL("FOR VALUES FROM ({}) TO ({})").format(sql.Literal(start), sql.Literal(end))
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute(
            sql.SQL(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE created_at >= %s AND created_at < %s)"
            ).format(default),
            [start, end],
        )
        stranded = raw.fetchone()[0]
        if not stranded:
            raw.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} {}").format(ident, parent, bounds))
            return name
        # The default partition holds rows of this month: PostgreSQL refuses a new partition
        # that would leave them there, so they move in the same transaction.
        raw.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                ident, parent
            )
        )
        raw.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM {} WHERE created_at >= %s AND created_at < %s "
                "RETURNING *) INSERT INTO {} SELECT * FROM moved"
            ).format(default, ident),
            [start, end],
        )
        logger.info("usage partition %s: %d rows moved from the default", name, raw.rowcount)
        raw.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(parent, ident, bounds))
    return name


@transaction.atomic
def partition_drop(*, partition: Partition) -> None:
    """Detach and drop one month partition (its rows go with it)."""
    parent, ident = sql.Identifier(TABLE), sql.Identifier(partition.name)
    with connection.cursor() as cursor:
        # Foreign keys are checked at commit (Django's DEFERRABLE INITIALLY DEFERRED): rows
        # written earlier in this transaction leave pending checks that block a DROP.
        cursor.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.cursor.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(parent, ident))
        cursor.cursor.execute(sql.SQL("DROP TABLE {}").format(ident))
