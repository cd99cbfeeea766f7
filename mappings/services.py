"""Writes and computations on prices (HackSoft style: keyword-only, typed, one verb each)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import transaction
from django.utils import timezone

from mappings.catalogue import CatalogueEntry, catalogue_lookup, catalogue_provider_for
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


class CatalogueStatus:
    """Why a mapping did or did not get catalogue prices (``CatalogueSuggestion.status``)."""

    NEW = "new"
    ALREADY_PRICED = "already priced"
    UNKNOWN_MODEL = "unknown model"
    NO_CATALOGUE = "no list price for this provider type"


@dataclass(frozen=True, slots=True)
class CatalogueSuggestion:
    """One mapping against the catalogue: the price rows it would get, or why none."""

    mapping: ModelProviderMapping
    status: str
    entry: CatalogueEntry | None = None
    prices: tuple[ModelPrice, ...] = ()


@dataclass(frozen=True, slots=True)
class CataloguePriceResult:
    created: list[ModelPrice]
    already_priced: int
    unknown: list[str]
    suggestions: list[CatalogueSuggestion]


def catalogue_suggestions(*, mappings: Iterable[ModelProviderMapping]) -> list[CatalogueSuggestion]:
    """What the catalogue would add for each mapping (nothing is written).

    Conservative: a mapping or target that has any price (even a future one) gets nothing, and
    two mappings of one target share its rows (suggested once, for the first).
    """
    out: list[CatalogueSuggestion] = []
    seen: set[tuple[int, str]] = set()
    for mapping in mappings:
        target = (mapping.provider_id, mapping.provider_model_id)
        if target in seen or model_price_exists_for(
            mapping_id=mapping.id,
            provider_id=mapping.provider_id,
            provider_model=mapping.provider_model_id,
        ):
            out.append(CatalogueSuggestion(mapping, CatalogueStatus.ALREADY_PRICED))
            continue
        provider = mapping.provider
        if (
            catalogue_provider_for(provider_type=provider.provider_type, preset=provider.preset)
            is None
        ):
            out.append(CatalogueSuggestion(mapping, CatalogueStatus.NO_CATALOGUE))
            continue
        entry = catalogue_lookup(
            provider_type=provider.provider_type,
            preset=provider.preset,
            provider_model=mapping.provider_model_id,
        )
        if entry is None:
            out.append(CatalogueSuggestion(mapping, CatalogueStatus.UNKNOWN_MODEL))
            continue
        seen.add(target)
        prices = tuple(
            ModelPrice(
                provider_id=mapping.provider_id,
                provider_model_id=mapping.provider_model_id,
                input_per_million=period.input,
                output_per_million=period.output,
                cached_input_per_million=period.cached_input,
                effective_from=period.effective_from,
            )
            for period in entry.periods
        )
        out.append(CatalogueSuggestion(mapping, CatalogueStatus.NEW, entry, prices))
    return out


@transaction.atomic
def catalogue_prices_load(
    *, dry_run: bool = False, mapping_ids: Iterable[int] | None = None
) -> CataloguePriceResult:
    """Give every unpriced mapping (or those of ``mapping_ids``) its catalogue price history.

    Each dated period of the catalogue becomes a provider + provider model ``ModelPrice`` with
    that ``effective_from``, so the history reads as the catalogue does. Idempotent: a second
    run finds the target priced and adds nothing. Existing prices are never changed, records
    already made are not re-priced, and a model the catalogue does not know stays unpriced.
    """
    mappings = ModelProviderMapping.objects.select_related("provider").order_by("id")
    if mapping_ids is not None:
        mappings = mappings.filter(id__in=list(mapping_ids))
    suggestions = catalogue_suggestions(mappings=mappings)
    created: list[ModelPrice] = []
    for suggestion in suggestions:
        for price in suggestion.prices:
            price.full_clean()
            if not dry_run:
                price.save()
            created.append(price)
    return CataloguePriceResult(
        created=created,
        already_priced=sum(s.status == CatalogueStatus.ALREADY_PRICED for s in suggestions),
        unknown=sorted(
            {
                s.mapping.provider_model_id
                for s in suggestions
                if s.status in (CatalogueStatus.UNKNOWN_MODEL, CatalogueStatus.NO_CATALOGUE)
            }
        ),
        suggestions=suggestions,
    )


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
