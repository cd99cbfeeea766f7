"""The request series' labels and estimated cost come from the route table in force when an
event is observed: a republished table (new price, renamed instance) is used at once, and a
name the table does not know never becomes a series."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from gateway.monitoring import metrics
from gateway.routing.holder import route_tables
from gateway.routing.table import PriceSnapshot, RouteTable
from gateway.usage.events import UsageEvent
from tests.factories import provider_snapshot, route_candidate

PID = 90_417  # an instance id no other test's series use


def _table(name: str, input_price: str, cached_price: str | None) -> RouteTable:
    provider = provider_snapshot(id=PID, name=name)
    price = PriceSnapshot(
        price_id=1,
        input_per_million=Decimal(input_price),
        output_per_million=Decimal("10"),
        cached_input_per_million=None if cached_price is None else Decimal(cached_price),
    )
    candidate = route_candidate(provider, mapping_id=7, alias="labels-alias", price=price)
    return RouteTable(
        version=name,
        aliases={"labels-alias": (candidate,)},
        providers={PID: provider},
        virtual_keys={},
    )


def _event(alias: str = "labels-alias") -> UsageEvent:
    return UsageEvent(
        "req",
        0.0,
        "chat",
        1,
        alias,
        200,
        provider_id=PID,
        mapping_id=7,
        prompt_tokens=1_000,
        completion_tokens=100,
        cached_tokens=400,
    )


def _sample(metric: Any, **labels: str) -> float | None:
    """A counter's value for exactly ``labels``; None when there is no such series (reading
    through ``labels()`` would create it)."""
    metrics.metrics_publish()
    for family in metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels == labels:
                return float(sample.value)
    return None


def _cost(name: str) -> float | None:
    keys = {"account_group": "", "key_id": "", "key": ""}
    return _sample(metrics.COST, provider_id=str(PID), provider=name, **keys)


def _requests(name: str, alias: str) -> float | None:
    return _sample(metrics.REQUESTS, provider_id=str(PID), provider=name, alias=alias, status="200")


@pytest.fixture
def tables() -> Iterator[None]:
    yield
    route_tables.reset()


def test_a_republished_table_prices_and_names_the_next_event(tables: None) -> None:
    route_tables.table = _table("before", "2", "1")
    metrics.usage_event_observe(_event())
    # 600 uncached at 2 + 400 cached at 1 + 100 out at 10, per million
    assert _cost("before") == pytest.approx(2_600 / 1_000_000)

    route_tables.table = _table("after", "4", None)  # no cached price: cached at input's
    metrics.usage_event_observe(_event())
    assert _cost("after") == pytest.approx(5_000 / 1_000_000)
    assert _cost("before") == pytest.approx(2_600 / 1_000_000)  # not counted again


def test_an_alias_the_table_does_not_know_is_not_a_series(tables: None) -> None:
    route_tables.table = _table("labels-unknown", "2", "1")
    metrics.usage_event_observe(_event(alias="made-up-by-a-client"))
    assert _requests("labels-unknown", metrics.UNKNOWN_MODEL) == 1
    assert _requests("labels-unknown", "made-up-by-a-client") is None
