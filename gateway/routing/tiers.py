"""Claude tier mapping for Anthropic-format clients (``POST /v1/messages``).

Claude Code and the Anthropic SDK ask for Claude model names (``claude-3-5-haiku-latest``);
the tier rules turn such a name into one of the gateway's aliases: an existing alias is used
as is, else the first matching pattern (fnmatch, case-insensitive) names a tier, else names
starting with ``claude`` go to the default tier. Held in the route table (no SQL per request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from mappings.models import DEFAULT_TIER_PATTERNS, TierAlias, TierPattern


@dataclass(frozen=True, slots=True)
class TierRules:
    """tier -> alias, ordered (lowercased pattern, tier), and the default tier."""

    aliases: dict[str, str] = field(default_factory=dict)
    patterns: tuple[tuple[str, str], ...] = tuple(
        (p.lower(), str(t)) for p, t in DEFAULT_TIER_PATTERNS
    )
    default: str = "big"

    def tier_for(self, requested: str) -> str | None:
        """The tier a requested (non-alias) model name falls into, or None."""
        name = requested.lower()
        for pattern, tier in self.patterns:
            if fnmatchcase(name, pattern):
                return tier
        return self.default if name.startswith("claude") else None

    def alias_for(self, requested: str, known_aliases: object) -> str | None:
        """The alias serving ``requested``: itself when it is an alias, else by tier."""
        if requested in known_aliases:  # type: ignore[operator]
            return requested
        tier = self.tier_for(requested)
        return self.aliases.get(tier) if tier is not None else None


def tier_rules_build() -> TierRules:
    """The stored rules (two small queries); DEFAULT_TIER_PATTERNS when no pattern is stored."""
    aliases: dict[str, str] = {}
    default = "big"
    for row in TierAlias.objects.all():
        aliases[row.tier] = row.alias
        if row.is_default:
            default = row.tier
    patterns = tuple(
        (p.pattern.lower(), p.tier) for p in TierPattern.objects.order_by("position", "id")
    )
    if not patterns:
        return TierRules(aliases=aliases, default=default)
    return TierRules(aliases=aliases, patterns=patterns, default=default)
