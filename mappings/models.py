"""Model aliases mapped to provider instances, and their prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from providers.models import Provider

#: How an undeclared capability is treated, shown in the admin and the API schema.
UNDECLARED_HELP = "Empty: undeclared, not checked (the upstream decides)."
#: What a declared False does, for the capabilities the gateway routes by.
BLOCKS = "No: requests that need it are not sent here (400 when no mapping of the alias can)."
#: For the capabilities the gateway records but does not route by.
RECORDED = "Recorded for reference; requests are not checked against it."


def _capability(
    what: str, effect: str, undeclared: str = UNDECLARED_HELP
) -> models.BooleanField[bool | None, bool | None]:
    """A declared capability: True, False, or None (undeclared).

    Only a declared False keeps requests that need it away from the mapping; a mapping that
    says nothing is not refused for what it did not declare (the upstream knows its models).
    """
    return models.BooleanField(
        null=True, blank=True, default=None, help_text=f"{what}. {undeclared} {effect}"
    )


class ModelProviderMapping(models.Model):
    """An alias served by one provider instance (by ID) under that instance's model name.

    The same alias mapped to several instances is how failover and load balancing are
    configured: ``priority`` orders them (lowest first), ``weight`` shares traffic. The
    ``supports_*`` capabilities are three-state: None (undeclared) is not checked.
    """

    model_alias = models.CharField(max_length=200, db_index=True)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="mappings")
    provider_model_id = models.CharField(
        max_length=200, help_text="The model (or Azure deployment) name at the provider."
    )
    is_enabled = models.BooleanField(default=True)
    priority = models.PositiveIntegerField(default=1, help_text="Lower is tried first.")
    weight = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    supports_chat = _capability("Chat completions and Anthropic messages", BLOCKS)
    supports_vision = _capability("Image input", RECORDED)
    supports_tools = _capability("Tool calls", RECORDED)
    supports_streaming = _capability("Streamed answers", BLOCKS)
    supports_embeddings = _capability("Embeddings", BLOCKS)
    supports_json_mode = _capability("JSON mode (response_format)", RECORDED)
    supports_reasoning = _capability(
        "Takes reasoning_effort: Anthropic clients' thinking and effort are sent as it",
        "No: they are dropped (and named in x-gateway-dropped-params).",
        "Empty: undeclared, decided by the model name (OpenAI's o1, o3, o4, gpt-5 families).",
    )
    max_context_tokens = models.PositiveIntegerField(null=True, blank=True)
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_alias", "priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_alias", "provider", "provider_model_id"], name="uniq_alias_target"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_alias} -> {self.provider.name}:{self.provider_model_id}"

    def clean(self) -> None:
        if self.model_alias and self.model_alias != self.model_alias.strip():
            raise ValidationError({"model_alias": "alias must not start or end with spaces"})
        if self.supports_chat is False and self.supports_embeddings is False:
            # Undeclared is fine (not checked); declaring it can do neither leaves it nothing.
            raise ValidationError("a mapping must not declare both chat and embeddings as false")


class ModelPrice(models.Model):
    """Price per million tokens, effective from a point in time.

    Either for one mapping, or for a provider instance + provider model (covering every alias
    that routes there). Prices never change history: a price already in effect cannot be
    edited; add a new row with a later ``effective_from`` instead. Usage records store the
    cost computed at request time.
    """

    mapping = models.ForeignKey(
        ModelProviderMapping, null=True, blank=True, on_delete=models.CASCADE, related_name="prices"
    )
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.CASCADE, related_name="prices"
    )
    provider_model_id = models.CharField(max_length=200, blank=True)
    input_per_million = models.DecimalField(
        max_digits=14, decimal_places=6, validators=[MinValueValidator(Decimal(0))]
    )
    output_per_million = models.DecimalField(
        max_digits=14, decimal_places=6, validators=[MinValueValidator(Decimal(0))]
    )
    cached_input_per_million = models.DecimalField(
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Empty: cached input tokens cost the normal input price.",
    )
    effective_from = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-effective_from", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(mapping__isnull=False) & Q(provider__isnull=True))
                | (Q(mapping__isnull=True) & Q(provider__isnull=False) & ~Q(provider_model_id="")),
                name="price_target_mapping_xor_provider_model",
            ),
        ]
        indexes = [
            models.Index(fields=["mapping", "effective_from"], name="price_mapping_from"),
            models.Index(
                fields=["provider", "provider_model_id", "effective_from"],
                name="price_provider_model_from",
            ),
        ]

    def __str__(self) -> str:
        target = (
            str(self.mapping) if self.mapping_id else f"{self.provider}:{self.provider_model_id}"
        )
        return f"{target} in {self.input_per_million}/out {self.output_per_million} per 1M"

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if self.mapping_id and (self.provider_id or self.provider_model_id):
            errors["mapping"] = "give either a mapping, or a provider and provider model, not both"
        elif not self.mapping_id and not (self.provider_id and self.provider_model_id):
            errors["mapping"] = "give a mapping, or a provider and a provider model"
        if self.pk:
            old = ModelPrice.objects.filter(pk=self.pk).first()
            if old is not None and old.effective_from <= timezone.now():
                changed = any(
                    getattr(old, f) != getattr(self, f)
                    for f in (
                        "input_per_million",
                        "output_per_million",
                        "cached_input_per_million",
                        "effective_from",
                    )
                )
                if changed:
                    errors["effective_from"] = (
                        "this price is already in effect and cannot change history; add a new "
                        "price with a later effective_from"
                    )
        if errors:
            raise ValidationError(errors)


class AliasStrategy(models.TextChoices):
    """Selection strategies (the same values as ``gateway.keys.models.RoutingStrategy``,
    repeated here because ``mappings`` may not import ``gateway``)."""

    PRIORITY = "priority", "Priority (lowest first, next on failure)"
    ROUND_ROBIN = "round_robin", "Round robin"
    WEIGHTED = "weighted", "Weighted by mapping weight"
    RANDOM = "random", "Random"
    LEAST_COST = "least_cost", "Least cost"
    LOWEST_LATENCY = "lowest_latency", "Lowest latency"
    LEAST_BUSY = "least_busy", "Least busy"


class AliasRoutingPolicy(models.Model):
    """A per-alias override of the global selection strategy (routing settings)."""

    alias = models.CharField(max_length=200, unique=True)
    strategy = models.CharField(max_length=32, choices=AliasStrategy.choices)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["alias"]
        verbose_name = "alias routing policy"
        verbose_name_plural = "alias routing policies"

    def __str__(self) -> str:
        return f"{self.alias}: {self.strategy}"


class Tier(models.TextChoices):
    """The Claude Code proxy's three model classes (opus, sonnet, haiku)."""

    BIG = "big", "big (opus-class names)"
    MIDDLE = "middle", "middle (sonnet-class names)"
    SMALL = "small", "small (haiku-class names)"


#: Patterns in effect when no TierPattern row exists (the file left ``tiers.patterns`` out).
DEFAULT_TIER_PATTERNS: tuple[tuple[str, str], ...] = (
    ("*opus*", Tier.BIG),
    ("*sonnet*", Tier.MIDDLE),
    ("*haiku*", Tier.SMALL),
)


class TierAlias(models.Model):
    """Which alias serves a tier, for Anthropic-format clients asking for Claude model names.

    ``is_default`` marks the tier for ``claude*`` names no pattern matched (at most one row;
    none marked means ``big``). A requested name that is an alias itself is used as is.
    """

    tier = models.CharField(max_length=16, choices=Tier.choices, unique=True)
    alias = models.CharField(max_length=200, help_text="A model alias (see mappings).")
    is_default = models.BooleanField(
        default=False, help_text="Tier for other claude-* names (none marked: big)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tier"]
        verbose_name = "Claude tier"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_tier"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tier} -> {self.alias}"

    def clean(self) -> None:
        if not self.alias or self.alias != self.alias.strip():
            raise ValidationError({"alias": "give an alias without leading or trailing spaces"})


class TierPattern(models.Model):
    """A requested-model pattern (fnmatch, case-insensitive) and the tier it selects.

    Tried in ``position`` order, first match wins. No rows: DEFAULT_TIER_PATTERNS apply.
    """

    position = models.PositiveIntegerField(unique=True)
    pattern = models.CharField(max_length=200, help_text="fnmatch pattern, e.g. *haiku*")
    tier = models.CharField(max_length=16, choices=Tier.choices)

    class Meta:
        ordering = ["position"]
        verbose_name = "Claude tier pattern"

    def __str__(self) -> str:
        return f"{self.position}: {self.pattern} -> {self.tier}"

    def clean(self) -> None:
        if not self.pattern.strip():
            raise ValidationError({"pattern": "the pattern must not be empty"})
