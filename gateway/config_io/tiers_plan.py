"""The ``tiers`` section: Claude tier aliases and match patterns (``POST /v1/messages``).

```yaml
tiers:
  big: gpt-4o
  middle: gpt-4o
  small: gpt-4o-mini
  patterns: [{match: "*opus*", tier: big}, ...]   # optional: defaults when left out
  default: big                                      # optional: tier for other claude-* names
```

The section describes the tiers completely: a tier left out loses its alias, and patterns left
out mean the built-in defaults (stored as no pattern rows). Without a ``tiers`` section the
stored rules are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from gateway.config_io.report import ImportReport
from gateway.config_io.schema import Field, as_str, parse_entry
from mappings.models import Tier, TierAlias, TierPattern
from providers.config_version import config_version_bump

TIER_NAMES = tuple(str(t) for t in Tier.values)

TIERS_FIELDS = (
    Field("big", "", as_str),
    Field("middle", "", as_str),
    Field("small", "", as_str),
    Field("default", "", as_str),
)
TIER_PATTERN_FIELDS = (
    Field("match", "pattern", as_str, required=True),
    Field("tier", "tier", as_str, required=True),
)


@dataclass
class TiersPlan:
    """Rows to write: aliases by tier (None: delete), the new pattern list when it changed."""

    aliases: dict[str, str | None] = field(default_factory=dict)
    default: str | None = None  # the explicitly marked tier, or None (big implied)
    patterns: list[tuple[str, str]] | None = None  # None: unchanged
    changed_aliases: list[str] = field(default_factory=list)
    unchanged_aliases: list[str] = field(default_factory=list)


def plan_tiers(data: dict[str, Any], errors: list[str]) -> tuple[TiersPlan | None, bool]:
    """Validate ``data["tiers"]``; return (plan or None, whether stored rules were left)."""
    stored = {row.tier: row for row in TierAlias.objects.all()}
    stored_patterns = [(p.pattern, p.tier) for p in TierPattern.objects.order_by("position")]
    raw = data.get("tiers")
    if raw is None:
        return None, bool(stored or stored_patterns)
    values = parse_entry(raw, TIERS_FIELDS, "tiers", errors, extra=("patterns",))
    if values is None:
        return None, False
    plan = TiersPlan()
    for tier in TIER_NAMES:
        alias = values.get(tier)
        if alias is not None:
            probe = TierAlias(tier=tier, alias=alias)
            try:
                probe.clean_fields(exclude={"is_default"})
                probe.clean()
            except ValidationError as exc:
                errors.extend(f"tiers.{tier}: {m}" for m in exc.messages)
                continue
    default = values.get("default")
    if default is not None:
        if default not in TIER_NAMES:
            errors.append(f"tiers.default: must be one of {', '.join(TIER_NAMES)}")
        elif values.get(default) is None:
            errors.append(f"tiers.default: tier {default!r} has no alias in this section")
        else:
            plan.default = default
    patterns = _plan_patterns(values.get("patterns"), errors)
    for tier in TIER_NAMES:
        alias = values.get(tier)
        row = stored.get(tier)
        plan.aliases[tier] = alias
        before = (row.alias, row.is_default) if row else None
        after = (alias, plan.default == tier) if alias is not None else None
        if before != after:
            plan.changed_aliases.append(tier)
        elif after is not None:
            plan.unchanged_aliases.append(tier)
    if patterns is not None and patterns != stored_patterns:
        plan.patterns = patterns
    return plan, False


def _plan_patterns(raw: Any, errors: list[str]) -> list[tuple[str, str]] | None:
    if raw is None:
        return []  # the defaults apply: no stored rows
    if not isinstance(raw, list):
        errors.append("tiers.patterns: must be a list of {match, tier}")
        return None
    out: list[tuple[str, str]] = []
    ok = True
    for i, entry in enumerate(raw):
        label = f"tiers.patterns[{i}]"
        values = parse_entry(entry, TIER_PATTERN_FIELDS, label, errors)
        if values is None:
            ok = False
            continue
        row = TierPattern(position=i, pattern=values["match"], tier=values["tier"])
        try:
            row.full_clean(validate_unique=False)
        except ValidationError as exc:
            ok = False
            for name, messages in exc.message_dict.items():
                where = {"pattern": "match", "tier": "tier"}.get(name)
                errors.extend(
                    f"{label}.{where}: {m}" if where else f"{label}: {m}" for m in messages
                )
            continue
        out.append((row.pattern, row.tier))
    return out if ok else None


def write_tiers(plan: TiersPlan | None, left: bool, report: ImportReport) -> None:
    """Apply ``plan`` (inside the import's transaction) and report each tier and the patterns."""
    if plan is None:
        if left:
            report.add("tier", "tiers", "left")
        return
    stored = {row.tier: row for row in TierAlias.objects.all()}
    # Demote first: the partial unique index allows one default tier at any moment.
    TierAlias.objects.filter(is_default=True).exclude(tier=plan.default or "").update(
        is_default=False
    )
    for tier, alias in plan.aliases.items():
        row = stored.get(tier)
        if alias is None:
            if row is not None:
                row.delete()
                report.add("tier", f"{tier} (removed)", "changed", [tier])
            continue
        if tier in plan.unchanged_aliases:
            report.add("tier", f"{tier} -> {alias}", "unchanged")
            continue
        if row is None:
            TierAlias.objects.create(tier=tier, alias=alias, is_default=plan.default == tier)
            report.add("tier", f"{tier} -> {alias}", "created")
        else:
            row.alias, row.is_default = alias, plan.default == tier
            row.save()
            report.add("tier", f"{tier} -> {alias}", "changed", [tier])
    if plan.patterns is not None:
        TierPattern.objects.all().delete()
        TierPattern.objects.bulk_create(
            TierPattern(position=i, pattern=p, tier=t) for i, (p, t) in enumerate(plan.patterns)
        )
        # bulk_create sends no post_save: bump the config version for the route tables.
        config_version_bump()
        label = "patterns" if plan.patterns else "patterns (defaults)"
        report.add("tier_pattern", label, "changed", ["patterns"])


def export_tiers() -> dict[str, Any] | None:
    """The ``tiers`` section as stored, or None when nothing is stored."""
    rows = list(TierAlias.objects.all())
    patterns = list(TierPattern.objects.order_by("position"))
    if not rows and not patterns:
        return None
    out: dict[str, Any] = {}
    by_tier = {row.tier: row for row in rows}
    for tier in TIER_NAMES:
        if tier in by_tier:
            out[tier] = by_tier[tier].alias
    if patterns:
        out["patterns"] = [{"match": p.pattern, "tier": p.tier} for p in patterns]
    default = next((row.tier for row in rows if row.is_default), None)
    if default is not None:
        out["default"] = default
    return out
