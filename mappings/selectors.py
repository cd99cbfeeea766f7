"""Reads on mappings and prices (HackSoft style: keyword-only, typed, no writes)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from mappings.models import ModelPrice


@dataclass(frozen=True, slots=True)
class PriceSnapshot:
    """One ModelPrice row as the recorder needs it (immutable, safe to cache per batch)."""

    price_id: int
    input_per_million: Decimal
    output_per_million: Decimal
    cached_input_per_million: Decimal | None
    effective_from: datetime


def _snapshot(price: ModelPrice) -> PriceSnapshot:
    return PriceSnapshot(
        price_id=price.id,
        input_per_million=price.input_per_million,
        output_per_million=price.output_per_million,
        cached_input_per_million=price.cached_input_per_million,
        effective_from=price.effective_from,
    )


class _History:
    """Prices of one target, oldest first, searchable by time."""

    def __init__(self, prices: list[PriceSnapshot]) -> None:
        # Same effective_from twice: the later row (higher id) wins, as in the route table.
        self.prices = sorted(prices, key=lambda p: (p.effective_from, p.price_id))
        self.starts = [p.effective_from for p in self.prices]

    def at(self, when: datetime) -> PriceSnapshot | None:
        i = bisect.bisect_right(self.starts, when)
        return self.prices[i - 1] if i else None


class PriceBook:
    """Every price (whole history) of a set of targets, loaded in two queries.

    The recorder builds one per batch, so pricing 500 events costs two queries instead of
    500. Lookups follow :func:`price_for_usage`: the mapping's own price in effect at the
    time, else the price of (provider instance, provider model).
    """

    def __init__(
        self,
        by_mapping: dict[int, _History],
        by_target: dict[tuple[int, str], _History],
    ) -> None:
        self._by_mapping = by_mapping
        self._by_target = by_target

    def price_at(
        self,
        *,
        mapping_id: int | None,
        provider_id: int | None,
        provider_model: str,
        at: datetime,
    ) -> PriceSnapshot | None:
        if mapping_id is not None and mapping_id in self._by_mapping:
            price = self._by_mapping[mapping_id].at(at)
            if price is not None:
                return price
        if provider_id is not None and provider_model:
            history = self._by_target.get((provider_id, provider_model))
            if history is not None:
                return history.at(at)
        return None


def price_book_load(
    *,
    mapping_ids: Iterable[int],
    targets: Iterable[tuple[int, str]],
) -> PriceBook:
    """Load the price history of ``mapping_ids`` and (provider id, provider model) ``targets``."""
    mapping_set = {m for m in mapping_ids if m is not None}
    target_set = {(p, m) for p, m in targets if p is not None and m}
    by_mapping: dict[int, list[PriceSnapshot]] = defaultdict(list)
    by_target: dict[tuple[int, str], list[PriceSnapshot]] = defaultdict(list)
    if mapping_set:
        for price in ModelPrice.objects.filter(mapping_id__in=mapping_set):
            assert price.mapping_id is not None
            by_mapping[price.mapping_id].append(_snapshot(price))
    if target_set:
        providers = {p for p, _ in target_set}
        names = {m for _, m in target_set}
        # Superset query (provider in P and model in M), filtered exactly below: one query
        # whatever the number of pairs.
        for price in ModelPrice.objects.filter(
            Q(mapping__isnull=True), provider_id__in=providers, provider_model_id__in=names
        ):
            assert price.provider_id is not None
            key = (price.provider_id, price.provider_model_id)
            if key in target_set:
                by_target[key].append(_snapshot(price))
    return PriceBook(
        {k: _History(v) for k, v in by_mapping.items()},
        {k: _History(v) for k, v in by_target.items()},
    )


def price_for_usage(
    *,
    mapping_id: int | None,
    provider_id: int | None,
    provider_model: str,
    at: datetime,
) -> PriceSnapshot | None:
    """The price in effect at ``at``: the mapping's own, else its provider instance + model's.

    ``None`` means unpriced: the record's cost stays NULL (reported as unpriced, never $0).
    """
    book = price_book_load(
        mapping_ids=[mapping_id] if mapping_id is not None else [],
        targets=[(provider_id, provider_model)] if provider_id is not None else [],
    )
    return book.price_at(
        mapping_id=mapping_id, provider_id=provider_id, provider_model=provider_model, at=at
    )


def model_price_exists_for(*, mapping_id: int, provider_id: int, provider_model: str) -> bool:
    """Whether any price (past, present or future) covers this mapping or its target."""
    return ModelPrice.objects.filter(
        Q(mapping_id=mapping_id)
        | Q(mapping__isnull=True, provider_id=provider_id, provider_model_id=provider_model)
    ).exists()
