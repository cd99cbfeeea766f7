"""Cost per instance: the price in effect at request time, stored with the record."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gateway.usage.models import UsageRecord
from gateway.usage.recorder import usage_events_record
from mappings.models import ModelPrice
from mappings.selectors import PriceSnapshot, price_for_usage
from mappings.services import usage_cost_compute
from tests.factories import make_mapping_row, make_mock_provider
from tests.usage.conftest import event, price_target

pytestmark = pytest.mark.django_db


def snap(inp: str, out: str, cached: str | None = None) -> PriceSnapshot:
    return PriceSnapshot(
        price_id=1,
        input_per_million=Decimal(inp),
        output_per_million=Decimal(out),
        cached_input_per_million=Decimal(cached) if cached else None,
        effective_from=timezone.now(),
    )


def test_cost_prices_uncached_cached_and_output_tokens_separately() -> None:
    price = snap("2.50", "10.00", "1.25")
    # 1000 prompt tokens of which 400 cached, 200 completion:
    # 600 * 2.50 + 400 * 1.25 + 200 * 10 = 1500 + 500 + 2000 = 4000 per million.
    cost = usage_cost_compute(
        price=price, prompt_tokens=1000, completion_tokens=200, cached_tokens=400
    )
    assert cost == Decimal("0.004")
    assert isinstance(cost, Decimal)
    # Without a cached price, cached tokens cost the input price.
    assert usage_cost_compute(
        price=snap("2.50", "10.00"), prompt_tokens=1000, completion_tokens=200, cached_tokens=400
    ) == Decimal("0.0045")
    # Quantized once to the column's 10 places (half-even), never a float.
    tiny = usage_cost_compute(price=snap("0.000001", "0"), prompt_tokens=3, completion_tokens=0)
    assert tiny == Decimal("0E-10") and tiny.as_tuple().exponent == -10


def test_price_change_never_alters_earlier_records() -> None:
    provider = make_mock_provider()
    mapping = make_mapping_row(provider)
    now = timezone.now()
    price_target(provider, "gpt-4o", "2.5", "10", effective_from=now - timedelta(days=30))
    later = price_target(provider, "gpt-4o", "5", "20", effective_from=now - timedelta(days=1))
    ids = {"provider_id": provider.id, "mapping_id": mapping.id, "provider_model": "gpt-4o"}
    old = event(created_at=(now - timedelta(days=2)).timestamp(), **ids)
    new = event(created_at=(now - timedelta(hours=1)).timestamp(), **ids)
    assert usage_events_record(events=[old.to_dict(), new.to_dict()]) == 2
    cost = {r.request_id: r.cost for r in UsageRecord.objects.all()}
    assert cost[old.request_id] == Decimal("0.0000575")  # (3*2.5 + 5*10) / 1M
    assert cost[new.request_id] == Decimal("0.000115")  # (3*5 + 5*20) / 1M

    # A newer price (a price in effect is never edited: a row is added) changes nothing stored,
    # and the records are not re-priced when their events are delivered again.
    ModelPrice.objects.create(
        provider=provider,
        provider_model_id="gpt-4o",
        input_per_million=Decimal("100"),
        output_per_million=Decimal("100"),
    )
    assert usage_events_record(events=[old.to_dict(), new.to_dict()]) == 0
    assert {r.request_id: r.cost for r in UsageRecord.objects.all()} == cost
    assert later.input_per_million == Decimal("5")


def test_mapping_price_wins_over_instance_price_and_instances_differ() -> None:
    a, b = make_mock_provider(), make_mock_provider()
    ma = make_mapping_row(a)
    mb = make_mapping_row(b)
    price_target(a, "gpt-4o", "2.5", "10")
    price_target(b, "gpt-4o", "1", "1")
    ModelPrice.objects.create(
        mapping=ma, input_per_million=Decimal("7"), output_per_million=Decimal("7")
    )
    at = timezone.now()
    pa = price_for_usage(mapping_id=ma.id, provider_id=a.id, provider_model="gpt-4o", at=at)
    pb = price_for_usage(mapping_id=mb.id, provider_id=b.id, provider_model="gpt-4o", at=at)
    assert pa is not None and pa.input_per_million == Decimal("7")
    assert pb is not None and pb.input_per_million == Decimal("1")
    # Before any price took effect: unpriced.
    assert (
        price_for_usage(
            mapping_id=mb.id,
            provider_id=b.id,
            provider_model="gpt-4o",
            at=at - timedelta(days=1),
        )
        is None
    )


def test_unpriced_usage_is_null_not_zero() -> None:
    provider = make_mock_provider()
    mapping = make_mapping_row(provider, model="no-price-model")
    ids = {"provider_id": provider.id, "mapping_id": mapping.id, "provider_model": "no-price-model"}
    used = event(**ids)
    nothing_used = event(prompt_tokens=0, completion_tokens=0, status_code=503, **ids)
    usage_events_record(events=[used.to_dict(), nothing_used.to_dict()])
    assert UsageRecord.objects.get(request_id=used.request_id).cost is None  # flagged
    # No tokens consumed: nothing unknown to price, so it is exactly 0, not flagged.
    assert UsageRecord.objects.get(request_id=nothing_used.request_id).cost == Decimal(0)
    assert UsageRecord.objects.filter(cost__isnull=True).count() == 1


def test_a_batch_is_priced_with_few_queries() -> None:
    instances = [make_mock_provider() for _ in range(5)]
    mappings = [make_mapping_row(p) for p in instances]
    for p in instances:
        price_target(p, "gpt-4o", "2.5", "10")
    events = [
        event(provider_id=p.id, mapping_id=m.id, provider_model="gpt-4o").to_dict()
        for p, m in zip(instances, mappings, strict=True)
        for _ in range(100)
    ]
    with CaptureQueriesContext(connection) as queries:
        assert usage_events_record(events=events) == 500
    # Lookups are per batch, not per event (inserts are chunked by the backend's limits).
    lookups = [q["sql"] for q in queries if not q["sql"].startswith("INSERT")]
    assert len(lookups) <= 10, [q[:80] for q in lookups]
    assert UsageRecord.objects.filter(cost=Decimal("0.0000575")).count() == 500


def test_deleted_references_are_recorded_as_null_instead_of_failing_forever() -> None:
    e = event(virtual_key_id=987654, provider_id=987654, mapping_id=987654, key_id=987654)
    assert usage_events_record(events=[e.to_dict()]) == 1
    record = UsageRecord.objects.get(request_id=e.request_id)
    assert (record.virtual_key_id, record.provider_id, record.mapping_id) == (None, None, None)
