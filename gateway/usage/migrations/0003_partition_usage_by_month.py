"""PostgreSQL: the usage table becomes range-partitioned by month on ``created_at``.

The rows move into a new partitioned table of the same name and columns: one partition per
month that has rows, the current month and the next three, and a default partition. The
primary key becomes ``(id, created_at)`` (the partition key must be in it); ids keep counting
from where they were. Indexes and foreign keys are recreated with their names, so later
migrations find them. SQLite keeps its plain table (nothing runs). Reversible: the reverse moves
the rows back into one plain table.

Runs in the migration's transaction: an error leaves the old table as it was. It rewrites the
table, so on a large database plan a maintenance window (the README gives the rate).
"""

from datetime import UTC, datetime

from django.db import migrations

TABLE = "gateway_usagerecord"
OLD = f"{TABLE}_unpartitioned"
NEW = f"{TABLE}_partitioned"
AHEAD = 3


def _month(year, month):
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)


def _table_definitions(cursor, table):
    """The table's non-primary-key index definitions and its foreign keys, by name."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = to_regclass(%s) AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)",
        [table],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype IN ('f', 'u') ORDER BY contype, conname",
        [table],
    )
    constraints = cursor.fetchall()
    return indexes, constraints


def _rebuild(cursor, *, partitioned):
    indexes, constraints = _table_definitions(cursor, TABLE)
    cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    suffix = " PARTITION BY RANGE (created_at)" if partitioned else ""
    cursor.execute(
        f"CREATE TABLE {NEW} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING IDENTITY){suffix}"
    )
    if partitioned:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') FROM {OLD}"
        )
        months = {(m.year, m.month) for (m,) in cursor.fetchall()}
        now = datetime.now(tz=UTC)
        ahead = (_month(now.year, now.month + k) for k in range(AHEAD + 1))
        months |= {(m.year, m.month) for m in ahead}
        for year, month in sorted(months):
            start, end = _month(year, month), _month(year, month + 1)
            cursor.execute(
                f"CREATE TABLE {TABLE}_p{start:%Y%m} PARTITION OF {NEW} "
                "FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
        cursor.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {NEW} DEFAULT")
    cursor.execute(f"INSERT INTO {NEW} OVERRIDING SYSTEM VALUE SELECT * FROM {OLD}")
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{NEW}', 'id'), "
        f"GREATEST((SELECT max(id) FROM {OLD}), 1), (SELECT max(id) FROM {OLD}) IS NOT NULL)"
    )
    cursor.execute(f"DROP TABLE {OLD}")
    cursor.execute(f"ALTER TABLE {NEW} RENAME TO {TABLE}")
    key = "(id, created_at)" if partitioned else "(id)"
    cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY {key}")
    for name, definition in constraints:
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")
    for _name, definition in indexes:
        on_new = definition.replace(f" ON public.{OLD} ", f" ON public.{TABLE} ")
        cursor.execute(on_new.replace(f" ON {OLD} ", f" ON {TABLE} "))


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            _rebuild(cursor, partitioned=True)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            _rebuild(cursor, partitioned=False)


class Migration(migrations.Migration):
    dependencies = [("usage", "0002_usage_request_once")]

    operations = [migrations.RunPython(partition, unpartition, elidable=False)]
