"""List prices from the ``genai-prices`` catalogue, as price-history periods for a mapping.

The catalogue (a maintained package: prices for hundreds of models and providers, with the
dates prices changed) is read only by the admin and management commands, never on the request
path: ``genai_prices`` is imported on first use (its data module is large).

What the gateway takes from it, per model: the standard input, output and cache-read prices per
million tokens of every dated period (``effective_from`` = the period's start date, UTC
midnight; a period with no start date is taken as in effect since the epoch). What it leaves
out, because ``ModelPrice`` has no column for it or it is not a list price: long-context tiers
(the base tier is taken), cache writes, audio and per-request units, service-tier variants
(flex, priority) and time-of-day discounts (the standard price is taken).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from providers.presets import PresetName
from providers.types import ProviderType

if TYPE_CHECKING:
    from genai_prices import types as gp_types

#: Where a period without a start date begins (the catalogue says "always").
SINCE_EVER = datetime(1970, 1, 1, tzinfo=UTC)

# The catalogue's provider for each provider type. Absent: no list price applies (a local server,
# the mock) or the type alone does not say whose models it serves (see the presets below).
_BY_TYPE: dict[str, str] = {
    ProviderType.OPENAI: "openai",
    ProviderType.AZURE_OPENAI: "azure",  # the catalogue falls back to OpenAI's list prices
    ProviderType.ANTHROPIC: "anthropic",
    ProviderType.GEMINI: "google",
    ProviderType.VERTEX_AI: "google",  # falls back to Anthropic's for Claude on Vertex
    ProviderType.BEDROCK: "aws",
}

# OpenAI-compatible instances are priced by their preset; self-hosted presets have no list price.
_BY_PRESET: dict[str, str] = {
    PresetName.GROQ: "groq",
    PresetName.MISTRAL: "mistral",
    PresetName.DEEPSEEK: "deepseek",
    PresetName.TOGETHER: "together",
    PresetName.FIREWORKS: "fireworks",
    PresetName.OPENROUTER: "openrouter",
    PresetName.XAI: "x-ai",
    PresetName.PERPLEXITY: "perplexity",
    PresetName.CEREBRAS: "cerebras",
}


@dataclass(frozen=True, slots=True)
class CataloguePeriod:
    """One dated list price (USD per million tokens)."""

    effective_from: datetime
    input: Decimal
    output: Decimal
    cached_input: Decimal | None


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """What the catalogue says about one provider model: its periods, oldest first."""

    provider_id: str
    model_id: str
    model_name: str
    periods: list[CataloguePeriod]
    notes: list[str] = field(default_factory=list)


def catalogue_version() -> str:
    """The installed catalogue's version (prices are refreshed by upgrading the package)."""
    from genai_prices import __version__

    return str(__version__)


def catalogue_provider_for(*, provider_type: str, preset: str = "") -> str | None:
    """The catalogue's provider id for an instance of ``provider_type`` (and ``preset``)."""
    if provider_type == ProviderType.OPENAI_COMPATIBLE:
        return _BY_PRESET.get(preset)
    return _BY_TYPE.get(provider_type)


def catalogue_lookup(
    *, provider_type: str, preset: str, provider_model: str
) -> CatalogueEntry | None:
    """The catalogue's prices for ``provider_model`` served by such an instance, or None.

    None when the instance's type has no catalogue provider, the model is unknown to it, or no
    period has an input price (models priced per image or per request only): such a mapping
    stays unpriced, its cost NULL, never $0.
    """
    provider_id = catalogue_provider_for(provider_type=provider_type, preset=preset)
    name = provider_model.strip()
    if provider_id is None or not name:
        return None
    from genai_prices import data_snapshot

    try:
        provider, model = data_snapshot.get_snapshot().find_provider_model(
            name, None, provider_id, None
        )
    except LookupError:
        return None
    notes: list[str] = []
    periods = _periods(model, notes)
    if not periods:
        return None
    return CatalogueEntry(
        provider_id=provider.id,
        model_id=model.id,
        model_name=model.name or model.id,
        periods=periods,
        notes=list(dict.fromkeys(notes)),
    )


def _periods(model: gp_types.ModelInfo, notes: list[str]) -> list[CataloguePeriod]:
    from genai_prices import types as gp

    if isinstance(model.prices, gp.ModelPrice):
        dated: list[tuple[datetime, Any]] = [(SINCE_EVER, model.prices)]
    else:
        dated = []
        for conditional in model.prices:
            constraint = conditional.constraint
            if constraint is None:
                dated.append((SINCE_EVER, conditional.prices))
            elif isinstance(constraint, gp.StartDateConstraint):
                start = datetime.combine(constraint.start_date, datetime.min.time(), tzinfo=UTC)
                dated.append((start, conditional.prices))
            else:
                notes.append("a time-of-day price is not modelled; the standard price is used")
    if model.price_variants:
        notes.append("service-tier variants (flex, priority) are not modelled")
    # The catalogue's rule: of prices that apply at one time, the last listed wins.
    by_start: dict[datetime, CataloguePeriod] = {}
    for start, price in dated:
        period = _period(start, price, notes)
        if period is not None:
            by_start[start] = period
    periods: list[CataloguePeriod] = []
    for start in sorted(by_start):
        period = by_start[start]
        # A change the gateway cannot see (a dropped tier, a variant) repeats the same prices.
        if periods and _same_price(periods[-1], period):
            continue
        periods.append(period)
    return periods


def _same_price(a: CataloguePeriod, b: CataloguePeriod) -> bool:
    return (a.input, a.output, a.cached_input) == (b.input, b.output, b.cached_input)


def _period(start: datetime, price: Any, notes: list[str]) -> CataloguePeriod | None:
    input_price = _base(price.input_mtok, notes)
    if input_price is None:
        return None
    output = _base(price.output_mtok, notes)
    return CataloguePeriod(
        effective_from=start,
        input=input_price,
        # A model with an input price and none for output (embeddings) produces no output tokens.
        output=output if output is not None else Decimal(0),
        cached_input=_base(price.cache_read_mtok, notes),
    )


def _base(value: Any, notes: list[str]) -> Decimal | None:
    from genai_prices import types as gp

    if isinstance(value, gp.TieredPrices):
        note = "long-context tiers are not modelled; the base tier is used"
        if note not in notes:
            notes.append(note)
        return Decimal(value.base).quantize(_QUANTUM)
    return None if value is None else Decimal(value).quantize(_QUANTUM)


# ModelPrice keeps 6 decimal places per million tokens (a millionth of a dollar per million).
_QUANTUM = Decimal("0.000001")
