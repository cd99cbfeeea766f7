"""What an import did (or, in a dry run, would do), entity by entity."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["created", "changed", "unchanged", "left"]

# Report order, and the words used in the rendered text.
KINDS = {
    "provider": "providers",
    "key": "provider keys",
    "mapping": "mappings",
    "price": "prices",
    "virtual_key": "virtual keys",
    "routing": "routing",
    "alias_routing": "alias routing policies",
    "tier": "Claude tiers",
    "tier_pattern": "Claude tier patterns",
}


@dataclass
class EntityResult:
    """One entity's outcome. ``fields`` are file paths (``rate_limit.requests_per_minute``)."""

    kind: str
    label: str
    action: Action
    fields: list[str] = field(default_factory=list)
    # Plaintext of a virtual key the import generated: shown once, never stored.
    new_key: str = field(default="", repr=False)


@dataclass
class ImportReport:
    """Per-entity outcome of ``config_import``; ``dry_run`` means nothing was written."""

    dry_run: bool
    results: list[EntityResult] = field(default_factory=list)

    def add(
        self, kind: str, label: str, action: Action, fields: list[str] | None = None
    ) -> EntityResult:
        result = EntityResult(kind=kind, label=label, action=action, fields=list(fields or []))
        self.results.append(result)
        return result

    def counts(self) -> Counter[str]:
        """How many entities got each action, all kinds together."""
        return Counter(r.action for r in self.results)

    def of(self, kind: str, action: Action | None = None) -> list[EntityResult]:
        return [
            r for r in self.results if r.kind == kind and (action is None or r.action == action)
        ]

    @property
    def has_changes(self) -> bool:
        counts = self.counts()
        return bool(counts["created"] or counts["changed"])

    def summary(self) -> str:
        counts = self.counts()
        text = ", ".join(f"{counts[a]} {a}" for a in ("created", "changed", "unchanged", "left"))
        return f"{text} (dry run: nothing was written)" if self.dry_run else text

    def render(self) -> str:
        """Human-readable report, one line per entity, grouped by kind."""
        lines: list[str] = []
        for kind, title in KINDS.items():
            rows = self.of(kind)
            if not rows:
                continue
            lines.append(f"{title}:")
            for row in rows:
                line = f"  {row.action:<9} {row.label}"
                if row.fields:
                    line += f" ({', '.join(row.fields)})"
                if row.new_key:
                    line += f"\n            key: {row.new_key}  <- shown once; store it now"
                lines.append(line)
        lines.append(f"Summary: {self.summary()}")
        return "\n".join(lines)
