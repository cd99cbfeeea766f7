"""Writes and computations on prices (HackSoft style: keyword-only, typed, one verb each)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import transaction
from django.utils import timezone

from mappings.models import ModelPrice, ModelProviderMapping
from mappings.selectors import PriceSnapshot, model_price_exists_for

# UsageRecord.cost has 10 decimal places: every cost is rounded there, once, half-even, so
# sums of records reconcile with any report that re-adds them.
COST_QUANTUM = Decimal("1E-10")
_MILLION = Decimal(1_000_000)


def usage_cost_compute(
    *,
    price: PriceSnapshot,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
) -> Decimal:
    """Cost in USD of one request: uncached input, cached input and output priced separately.

    ``cached_tokens`` are part of ``prompt_tokens`` (OpenAI's and the gateway's convention);
    they cost the cached-input price when the price has one, else the input price.
    """
    prompt = max(0, prompt_tokens)
    cached = min(max(0, cached_tokens), prompt)
    cached_rate = (
        price.cached_input_per_million
        if price.cached_input_per_million is not None
        else price.input_per_million
    )
    total = (
        (prompt - cached) * price.input_per_million
        + cached * cached_rate
        + max(0, completion_tokens) * price.output_per_million
    )
    return (total / _MILLION).quantize(COST_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class DefaultPrice:
    """A list price per million tokens (USD)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None


def _p(inp: str, out: str, cached: str | None = None) -> DefaultPrice:
    return DefaultPrice(Decimal(inp), Decimal(out), Decimal(cached) if cached else None)


# Public list prices (standard tier, USD per 1M tokens) as published by OpenAI and Anthropic
# in 2025. Defaults to check against your contract: negotiated, batch, regional (Azure) and
# long-context prices differ. Anthropic's cached input here is the cache *read* price.
DEFAULT_PRICES: dict[str, DefaultPrice] = {
    # OpenAI
    "gpt-4o": _p("2.50", "10.00", "1.25"),
    "gpt-4o-2024-08-06": _p("2.50", "10.00", "1.25"),
    "gpt-4o-2024-11-20": _p("2.50", "10.00", "1.25"),
    "gpt-4o-mini": _p("0.15", "0.60", "0.075"),
    "gpt-4o-mini-2024-07-18": _p("0.15", "0.60", "0.075"),
    "gpt-4.1": _p("2.00", "8.00", "0.50"),
    "gpt-4.1-2025-04-14": _p("2.00", "8.00", "0.50"),
    "gpt-4.1-mini": _p("0.40", "1.60", "0.10"),
    "gpt-4.1-mini-2025-04-14": _p("0.40", "1.60", "0.10"),
    "gpt-4.1-nano": _p("0.10", "0.40", "0.025"),
    "gpt-5": _p("1.25", "10.00", "0.125"),
    "gpt-5-mini": _p("0.25", "2.00", "0.025"),
    "gpt-5-nano": _p("0.05", "0.40", "0.005"),
    "o1": _p("15.00", "60.00", "7.50"),
    "o3": _p("2.00", "8.00", "0.50"),
    "o3-mini": _p("1.10", "4.40", "0.55"),
    "o3-mini-2025-01-31": _p("1.10", "4.40", "0.55"),
    "o4-mini": _p("1.10", "4.40", "0.275"),
    "text-embedding-3-small": _p("0.02", "0"),
    "text-embedding-3-large": _p("0.13", "0"),
    "text-embedding-ada-002": _p("0.10", "0"),
    # Anthropic (dated ids such as claude-sonnet-4-5-20250929 match too, see below)
    "claude-opus-4-1": _p("15.00", "75.00", "1.50"),
    "claude-opus-4": _p("15.00", "75.00", "1.50"),
    "claude-sonnet-4-5": _p("3.00", "15.00", "0.30"),
    "claude-sonnet-4": _p("3.00", "15.00", "0.30"),
    "claude-3-7-sonnet": _p("3.00", "15.00", "0.30"),
    "claude-haiku-4-5": _p("1.00", "5.00", "0.10"),
    "claude-3-5-haiku": _p("0.80", "4.00", "0.08"),
}

# Anthropic snapshot ids end in -YYYYMMDD; "-latest" aliases name the same model.
_SNAPSHOT_SUFFIX = re.compile(r"-(\d{8}|latest)$")


def default_price_find(*, provider_model: str) -> DefaultPrice | None:
    """The default list price for a provider model name, if it is a known model."""
    name = provider_model.strip().lower()
    if name in DEFAULT_PRICES:
        return DEFAULT_PRICES[name]
    return DEFAULT_PRICES.get(_SNAPSHOT_SUFFIX.sub("", name))


@dataclass(frozen=True, slots=True)
class DefaultPriceResult:
    created: list[ModelPrice]
    already_priced: int
    unknown: list[str]


@transaction.atomic
def default_prices_load(*, dry_run: bool = False) -> DefaultPriceResult:
    """Give every unpriced mapping of a known model a provider + provider model price.

    Idempotent and conservative: a mapping or target that has any price (even a future one)
    is left alone, and existing prices are never changed. New prices take effect now, so
    records made before stay as they were (unpriced records are not re-priced).
    """
    created: list[ModelPrice] = []
    already = 0
    unknown: set[str] = set()
    done: set[tuple[int, str]] = set()
    now = timezone.now()
    for mapping in ModelProviderMapping.objects.order_by("id"):
        target = (mapping.provider_id, mapping.provider_model_id)
        if target in done:
            continue
        if model_price_exists_for(
            mapping_id=mapping.id,
            provider_id=mapping.provider_id,
            provider_model=mapping.provider_model_id,
        ):
            already += 1
            continue
        default = default_price_find(provider_model=mapping.provider_model_id)
        if default is None:
            unknown.add(mapping.provider_model_id)
            continue
        done.add(target)
        price = ModelPrice(
            provider_id=mapping.provider_id,
            provider_model_id=mapping.provider_model_id,
            input_per_million=default.input,
            output_per_million=default.output,
            cached_input_per_million=default.cached_input,
            effective_from=now,
        )
        price.full_clean()
        if not dry_run:
            price.save()
        created.append(price)
    return DefaultPriceResult(created=created, already_priced=already, unknown=sorted(unknown))


class PriceLocked(Exception):
    """A price in effect was asked to be deleted: usage was priced with it (history)."""

    def __init__(self, price: ModelPrice) -> None:
        self.price = price
        super().__init__(
            f"the price “{price}” is in effect and cannot be deleted: usage may have been "
            "priced with it and price history must survive; add a new price with a later "
            "effective_from to change it"
        )

    @property
    def sentence(self) -> str:
        """The message as a sentence, for pages."""
        text = str(self)
        return f"{text[:1].upper()}{text[1:]}."


def model_price_in_effect(*, price: ModelPrice) -> bool:
    """True for a saved price whose ``effective_from`` has passed (history: locked)."""
    return bool(price.pk) and price.effective_from <= timezone.now()


def model_price_delete(*, price: ModelPrice) -> None:
    """Delete a scheduled price; a price in effect raises :class:`PriceLocked` (kept)."""
    if model_price_in_effect(price=price):
        raise PriceLocked(price)
    price.delete()
