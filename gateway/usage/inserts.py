"""The bulk insert of usage records: every row in one go, a request id already recorded skipped.

Each database gets the cheapest insert it has that skips conflicts:

* PostgreSQL (production, the Celery drain): the rows are COPYed into a temporary table and
  moved with one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. ``bulk_create`` spent most
  of a drain's time building model instances and adapting each value in Python (5,600 rows/s
  against 24,000 rows/s by COPY, README "Performance").
* SQLite (embedded mode, where a gateway worker writes its own usage on its database thread):
  ``INSERT OR IGNORE`` statements of as many rows as SQLite's parameter limit allows, the
  statements ``bulk_create(ignore_conflicts=True)`` sends there, built once per size.
  ``bulk_create`` also built a model instance per row and compiled each statement value by
  value, ~100 us a row here, all of it holding the GIL the worker's requests wait on. The
  values are adapted by the fields' own methods where adapting does anything (dates,
  decimals, JSON).
* Anything else: ``bulk_create(ignore_conflicts=True)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson
from django.db import connection
from django.db.models import Field, JSONField
from psycopg import sql

from gateway.usage.models import UsageRecord

# Fields whose values :func:`gateway.usage.recorder._row` already gives in the type SQLite
# stores (str, int, float, bool, None): Django's preparation of them returns them unchanged.
_AS_IS = frozenset(
    (
        "CharField",
        "BooleanField",
        "ForeignKey",
        "FloatField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
    )
)


def usage_rows_insert(rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` (UsageRecord field values by attribute name), skipping request ids
    already recorded; return how many were inserted (on a database other than PostgreSQL
    and SQLite: how many were sent). Runs inside the caller's transaction; ``rows`` is not
    empty and every row has the same keys."""
    if connection.vendor == "postgresql":
        return _insert_postgresql(rows)
    if connection.vendor == "sqlite":
        return _insert_sqlite(rows)
    UsageRecord.objects.bulk_create(
        [UsageRecord(**row) for row in rows], ignore_conflicts=True, batch_size=500
    )
    return len(rows)


def _columns(fields: tuple[str, ...]) -> list[tuple[Field[Any, Any], str]]:
    """Each of ``fields`` (attribute names: provider_id, not provider) with its column."""
    meta = UsageRecord._meta
    out = []
    for name in fields:
        field = meta.get_field(name)
        assert isinstance(field, Field) and field.column  # the rows fill concrete fields
        out.append((field, field.column))
    return out


def _insert_sqlite(rows: list[dict[str, Any]]) -> int:
    fields = tuple(rows[0])
    columns = _columns(fields)
    adapt: list[Callable[[Any], Any] | None] = [
        None if f.get_internal_type() in _AS_IS else _adapter(f) for f, _ in columns
    ]
    pairs = list(zip(fields, adapt, strict=True))
    names = tuple(column for _, column in columns)
    # Many rows per statement, as many as SQLite's parameter limit allows (bulk_create's
    # batches): sqlite3 releases the GIL around every statement it steps, and under load the
    # event loop holds it for up to the switch interval (5 ms) before this thread gets it
    # back. One statement per row (executemany) left the writer behind the requests.
    limit = connection.features.max_query_params or 999  # SQLite's default limit
    per_statement = max(1, limit // len(fields))
    inserted = 0
    with connection.cursor() as cursor:
        for at in range(0, len(rows), per_statement):
            chunk = rows[at : at + per_statement]
            params = [row[n] if how is None else how(row[n]) for row in chunk for n, how in pairs]
            cursor.execute(_sqlite_statement(names, len(chunk)), params)
            # The rows the statement inserted: an ignored one is not counted.
            inserted += max(int(cursor.rowcount), 0)
    return inserted


@lru_cache(maxsize=16)
def _sqlite_statement(columns: tuple[str, ...], rows: int) -> str:
    """``INSERT OR IGNORE`` of ``rows`` rows of ``columns``: the statement
    ``bulk_create(ignore_conflicts=True)`` sends on SQLite."""
    quote = connection.ops.quote_name
    one = "({})".format(", ".join(["%s"] * len(columns)))
    # Names from the model's metadata, quoted; every value goes as a parameter.
    return "INSERT OR IGNORE INTO {} ({}) VALUES {}".format(  # noqa: S608
        quote(UsageRecord._meta.db_table),
        ", ".join(quote(c) for c in columns),
        ", ".join([one] * rows),
    )


def _adapter(field: Field[Any, Any]) -> Callable[[Any], Any]:
    def adapt(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    return adapt


def _insert_postgresql(rows: list[dict[str, Any]]) -> int:
    fields = tuple(rows[0])  # what _row fills, by attribute name (provider_id, not provider)
    columns = _columns(fields)
    table = sql.Identifier(UsageRecord._meta.db_table)
    names = sql.SQL(", ").join([sql.Identifier(column) for _, column in columns])
    # COPY's text format takes JSON as its text.
    as_json = {n for n, (f, _) in zip(fields, columns, strict=True) if isinstance(f, JSONField)}
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: Django's wrapper has no COPY
        # Column types of the real table, none of its constraints (the conflicts are for the
        # INSERT below to skip). Dropped at once; ON COMMIT DROP covers an error on the way.
        raw.execute(
            sql.SQL(
                "CREATE TEMP TABLE usage_incoming ON COMMIT DROP AS "
                "SELECT {columns} FROM {table} WITH NO DATA"
            ).format(columns=names, table=table)
        )
        copy_in = sql.SQL("COPY usage_incoming ({columns}) FROM STDIN").format(columns=names)
        with raw.copy(copy_in) as copy:
            for row in rows:
                copy.write_row(
                    [
                        orjson.dumps(row[name]).decode() if name in as_json else row[name]
                        for name in fields
                    ]
                )
        raw.execute(
            sql.SQL(
                "INSERT INTO {table} ({columns}) "
                "SELECT {columns} FROM usage_incoming ON CONFLICT DO NOTHING"
            ).format(columns=names, table=table)
        )
        inserted = raw.rowcount
        raw.execute("DROP TABLE usage_incoming")
    return int(inserted)
