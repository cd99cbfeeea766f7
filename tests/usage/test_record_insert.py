"""The usage insert: COPY on PostgreSQL, one prepared ``INSERT OR IGNORE`` on SQLite; both must
store exactly what the event said and skip a request id recorded meanwhile.

The suite runs on one database: when it is PostgreSQL (CI), the last test runs this module
again on SQLite in a child pytest, so both inserts are checked on every run."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, transaction

from gateway.usage import recorder
from gateway.usage.events import Attempt
from gateway.usage.inserts import usage_rows_insert
from gateway.usage.models import UsageRecord
from mappings.selectors import price_book_load
from tests.factories import make_mapping_row, make_mock_provider
from tests.usage.conftest import event, price_target

pytestmark = pytest.mark.django_db

# COPY's text format gives tabs, newlines and backslashes a meaning: they must come back as sent.
AWKWARD = 'alias\twith\ttabs\nand "quotes", a \\ backslash, \\N, émoji 🚀'


def test_every_field_round_trips_through_the_insert() -> None:
    provider = make_mock_provider()
    mapping = make_mapping_row(provider)
    price_target(provider, "gpt-4o", "2.5", "10")
    attempts = [
        Attempt(provider.id, provider.name, None, "primary", 429, "rate\tlimited", 12.5),
        Attempt(provider.id, provider.name, None, "second", None, "timeout \\ x", 30000.0),
    ]
    e = event(
        model_alias=AWKWARD,
        provider_id=provider.id,
        mapping_id=mapping.id,
        provider_model="gpt-4o",
        account_group=0,
        stream=True,
        error_type="",
        prompt_tokens=1000,
        completion_tokens=200,
        cached_tokens=400,
        latency_ms=123.456,
        ttft_ms=7.25,
        attempts=attempts,
    )
    no_ttft = event(model_alias="", ttft_ms=None, status_code=503, error_type="no_provider")
    assert recorder.usage_events_record(events=[e.to_dict(), no_ttft.to_dict()]) == 2

    record = UsageRecord.objects.get(request_id=e.request_id)
    assert record.model_alias == AWKWARD
    assert (record.provider_id, record.mapping_id, record.provider_model) == (
        provider.id,
        mapping.id,
        "gpt-4o",
    )
    assert (record.account_group, record.stream, record.status_code) == (0, True, 200)
    assert (record.prompt_tokens, record.completion_tokens, record.cached_tokens) == (
        1000,
        200,
        400,
    )
    assert (record.latency_ms, record.ttft_ms) == (123.456, 7.25)
    assert record.cost == Decimal("0.0045")  # no cached price: cached tokens at input price
    assert record.attempts == e.to_dict()["attempts"]
    assert record.attempts[1]["status"] is None and record.attempts[1]["error"] == "timeout \\ x"
    assert abs(record.created_at.timestamp() - e.created_at) < 1e-5

    other = UsageRecord.objects.get(request_id=no_ttft.request_id)
    assert (other.model_alias, other.ttft_ms, other.error_type) == ("", None, "no_provider")
    assert (other.provider_id, other.account_group, other.attempts) == (None, None, [])


def test_a_request_id_recorded_meanwhile_is_skipped_not_overwritten() -> None:
    # Two drainers can hold the same redelivered event, both past the "already recorded"
    # check: the later insert must neither fail its batch nor change the first record.
    first = event(prompt_tokens=1)
    assert recorder.usage_events_record(events=[first.to_dict()]) == 1
    fresh = event()
    alive: dict[str, set[int]] = {
        name: set() for name in ("virtual_key_id", "provider_id", "key_id", "mapping_id")
    }
    book = price_book_load(mapping_ids=set(), targets=set())
    rows = [
        recorder._row(e, recorder._created_at(e), alive, book)
        for e in ({**first.to_dict(), "prompt_tokens": 999}, fresh.to_dict())
    ]
    with transaction.atomic():
        inserted = usage_rows_insert(rows)
    assert UsageRecord.objects.get(request_id=first.request_id).prompt_tokens == 1
    assert UsageRecord.objects.filter(request_id=fresh.request_id).count() == 1
    assert UsageRecord.objects.count() == 2
    assert inserted == 1  # what was inserted, not what was sent


def _rows_of(events: list[dict[str, object]]) -> list[dict[str, object]]:
    alive: dict[str, set[int]] = {
        name: set() for name in ("virtual_key_id", "provider_id", "key_id", "mapping_id")
    }
    book = price_book_load(mapping_ids=set(), targets=set())
    return [recorder._row(e, recorder._created_at(e), alive, book) for e in events]


def _stored() -> list[tuple[object, ...]]:
    """Every usage row as the database holds it (the id aside), by request id."""
    columns = [f.column for f in UsageRecord._meta.concrete_fields if f.column != "id"]
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quoted} FROM gateway_usagerecord ORDER BY request_id")
        return list(cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's own insert")
def test_sqlite_stores_what_bulk_create_stores() -> None:
    # The prepared insert adapts values itself where Django's preparation does nothing: the
    # database must hold byte for byte what bulk_create (the ORM's own insert) held.
    attempts = [Attempt(1, "p", None, "k", None, "timeout \\ x", 30000.0)]
    events = [
        event(model_alias=AWKWARD, stream=True, ttft_ms=7.25, attempts=attempts).to_dict(),
        event(ttft_ms=None, status_code=503, error_type="no_provider").to_dict(),
        {**event(prompt_tokens=5).to_dict(), "cost": None},
    ]
    rows = _rows_of(events)
    rows[0]["cost"] = Decimal("0.0045")  # a priced row beside the unpriced ones
    rows[0]["account_group"] = 32
    with transaction.atomic():
        UsageRecord.objects.bulk_create([UsageRecord(**r) for r in rows], ignore_conflicts=True)
    by_orm = _stored()
    UsageRecord.objects.all().delete()
    with transaction.atomic():
        assert usage_rows_insert(rows) == 3
    assert _stored() == by_orm
    assert UsageRecord.objects.get(request_id=events[0]["request_id"]).cost == Decimal("0.0045")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's own insert")
def test_sqlite_inserts_a_batch_in_few_statements() -> None:
    # sqlite3 lets go of the GIL around every statement it runs, and under load the event
    # loop keeps it for up to 5 ms before the database thread gets it back: a statement per
    # row (executemany) left embedded mode's writer behind the requests and its memory
    # growing (bench/run.py: 154 -> 332 MB over a soak). A batch goes in as few statements as
    # SQLite's parameter limit allows, as bulk_create sends it.
    rows = _rows_of([event().to_dict() for _ in range(250)])
    calls: list[tuple[bool, int]] = []

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if sql.startswith("INSERT"):  # not the test transaction's savepoints
            calls.append((many, len(params) if many else 1))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count), transaction.atomic():
        assert usage_rows_insert(rows) == 250
    per_statement = (connection.features.max_query_params or 999) // len(rows[0])  # 49
    assert calls == [(False, 1)] * -(-250 // per_statement)  # 6 statements, none per row
    assert UsageRecord.objects.count() == 250


@pytest.mark.skipif(connection.vendor == "sqlite", reason="the suite runs on SQLite already")
def test_this_module_passes_on_sqlite_too() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-rA"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    # The SQLite-only test ran there and passed (not skipped).
    assert "PASSED tests/usage/test_record_insert.py::test_sqlite_stores_what" in out.stdout
