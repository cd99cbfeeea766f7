"""The route table: an immutable in-memory snapshot of everything a request needs.

alias -> ordered candidates (mapping, provider instance snapshot with decrypted keys and
resolved headers, price), virtual key hash -> key snapshot, routing policy. Built from the
database once per configuration version; a warm request reads only this (no SQL).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.utils import timezone

from gateway.keys.models import RoutingSettings, VirtualKey
from gateway.routing.tiers import TierRules, tier_rules_build
from gateway.usage.events import UNKNOWN_MODEL
from mappings.models import AliasRoutingPolicy, ModelPrice, ModelProviderMapping
from providers.config_version import config_version_current_sync
from providers.snapshot import ProviderSnapshot, provider_snapshots_all


@dataclass(frozen=True, slots=True)
class PriceSnapshot:
    """The price in effect when the table was built (the recorder re-prices at request time)."""

    price_id: int
    input_per_million: Decimal
    output_per_million: Decimal
    cached_input_per_million: Decimal | None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way to serve an alias: a mapping onto a provider instance."""

    mapping_id: int
    alias: str
    provider: ProviderSnapshot
    provider_model: str
    priority: int
    weight: int
    # Capabilities: None is undeclared (not checked), only False keeps a request away.
    supports_chat: bool | None
    supports_vision: bool | None
    supports_tools: bool | None
    supports_streaming: bool | None
    supports_embeddings: bool | None
    supports_json_mode: bool | None
    max_context_tokens: int | None
    max_output_tokens: int | None
    price: PriceSnapshot | None
    supports_reasoning: bool | None = None


@dataclass(frozen=True, slots=True)
class VirtualKeySnapshot:
    """What authentication and authorisation need to know about a virtual key."""

    id: int
    name: str
    allowed_models: frozenset[str]
    is_enabled: bool
    expires_at: float | None  # epoch seconds
    requests_per_minute: int | None
    tokens_per_minute: int | None
    budget_amount: Decimal | None
    budget_period: str

    def allows(self, alias: str) -> bool:
        return not self.allowed_models or alias in self.allowed_models

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or time.time())


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    strategy: str = "priority"
    failure_threshold: int = 5
    recovery_timeout: int = 60


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Immutable snapshot; replaced whole, never mutated, so readers need no lock."""

    version: str
    aliases: dict[str, tuple[Candidate, ...]]
    providers: dict[int, ProviderSnapshot]
    virtual_keys: dict[str, VirtualKeySnapshot]
    policy: RoutingPolicy = field(default_factory=RoutingPolicy)
    built_at: float = field(default_factory=time.time)
    alias_strategies: dict[str, str] = field(default_factory=dict)
    tiers: TierRules = field(default_factory=TierRules)  # Claude names -> aliases (/v1/messages)

    def candidates(self, alias: str) -> tuple[Candidate, ...]:
        return self.aliases.get(alias, ())

    def known_alias(self, alias: str) -> str:
        """``alias`` when the table routes it (or it is empty), else :data:`UNKNOWN_MODEL`."""
        return alias if not alias or alias in self.aliases else UNKNOWN_MODEL

    def strategy_for(self, alias: str) -> str:
        """The alias's own strategy (AliasRoutingPolicy), else the global one."""
        return self.alias_strategies.get(alias) or self.policy.strategy


def _current_prices() -> tuple[dict[int, PriceSnapshot], dict[tuple[int, str], PriceSnapshot]]:
    now = timezone.now()
    by_mapping: dict[int, PriceSnapshot] = {}
    by_target: dict[tuple[int, str], PriceSnapshot] = {}
    # Newest first: the first row seen per target is the one in effect.
    for price in ModelPrice.objects.filter(effective_from__lte=now).order_by(
        "-effective_from", "-id"
    ):
        snap = PriceSnapshot(
            price_id=price.id,
            input_per_million=price.input_per_million,
            output_per_million=price.output_per_million,
            cached_input_per_million=price.cached_input_per_million,
        )
        if price.mapping_id is not None:
            by_mapping.setdefault(price.mapping_id, snap)
        elif price.provider_id is not None:
            by_target.setdefault((price.provider_id, price.provider_model_id), snap)
    return by_mapping, by_target


def route_table_build() -> RouteTable:
    """Build a table from the database (a handful of queries, whatever the size).

    The version is read *before* the data so that a change landing mid-build is picked up
    by the next check instead of being missed.
    """
    version = config_version_current_sync()
    providers = provider_snapshots_all()
    by_mapping, by_target = _current_prices()
    grouped: dict[str, list[Candidate]] = defaultdict(list)
    for m in ModelProviderMapping.objects.filter(is_enabled=True).order_by(
        "model_alias", "priority", "id"
    ):
        provider = providers.get(m.provider_id)
        if provider is None or not provider.is_enabled or provider.error:
            continue
        grouped[m.model_alias].append(
            Candidate(
                mapping_id=m.id,
                alias=m.model_alias,
                provider=provider,
                provider_model=m.provider_model_id,
                priority=m.priority,
                weight=m.weight,
                supports_chat=m.supports_chat,
                supports_vision=m.supports_vision,
                supports_tools=m.supports_tools,
                supports_streaming=m.supports_streaming,
                supports_embeddings=m.supports_embeddings,
                supports_json_mode=m.supports_json_mode,
                supports_reasoning=m.supports_reasoning,
                max_context_tokens=m.max_context_tokens,
                max_output_tokens=m.max_output_tokens,
                price=by_mapping.get(m.id) or by_target.get((m.provider_id, m.provider_model_id)),
            )
        )
    vkeys = list(VirtualKey.objects.all())
    keys = {
        vk.key_hash: VirtualKeySnapshot(
            id=vk.id,
            name=vk.name,
            allowed_models=frozenset(vk.allowed_models or []),
            is_enabled=vk.is_enabled,
            expires_at=vk.expires_at.timestamp() if vk.expires_at else None,
            requests_per_minute=vk.requests_per_minute,
            tokens_per_minute=vk.tokens_per_minute,
            budget_amount=vk.budget_amount,
            budget_period=vk.budget_period,
        )
        for vk in vkeys
    }
    # A key replaced by a rotation with a grace period: the same key, until the grace ends.
    for vk in vkeys:
        if vk.previous_key_active and vk.previous_key_hash not in keys:
            assert vk.previous_key_expires_at is not None
            current = keys[vk.key_hash]
            ends = vk.previous_key_expires_at.timestamp()
            expires = ends if current.expires_at is None else min(ends, current.expires_at)
            keys[vk.previous_key_hash] = replace(current, expires_at=expires)
    rs = RoutingSettings.objects.filter(pk=1).first()
    policy = (
        RoutingPolicy(rs.strategy, rs.failure_threshold, rs.recovery_timeout)
        if rs
        else RoutingPolicy()
    )
    return RouteTable(
        version=version,
        aliases={alias: tuple(c) for alias, c in grouped.items()},
        providers=providers,
        virtual_keys=keys,
        policy=policy,
        alias_strategies=dict(AliasRoutingPolicy.objects.values_list("alias", "strategy")),
        tiers=tier_rules_build(),
    )
