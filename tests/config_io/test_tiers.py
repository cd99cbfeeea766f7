"""The ``tiers`` section: Claude tier aliases and patterns (import, export, validation)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config_io.errors import ConfigError
from gateway.config_io.exporter import config_export
from gateway.config_io.importer import config_import
from mappings.models import TierAlias, TierPattern
from providers.config_version import config_version_db

pytestmark = pytest.mark.django_db

TIERS: dict[str, Any] = {
    "big": "gpt-4o",
    "middle": "gpt-4o",
    "small": "gpt-4o-mini",
    "patterns": [
        {"match": "*opus*", "tier": "big"},
        {"match": "*sonnet*", "tier": "middle"},
        {"match": "*haiku*", "tier": "small"},
        {"match": "*fast*", "tier": "small"},
    ],
    "default": "middle",
}


def stored() -> tuple[dict[str, tuple[str, bool]], list[tuple[str, str]]]:
    aliases = {t.tier: (t.alias, t.is_default) for t in TierAlias.objects.all()}
    patterns = [(p.pattern, p.tier) for p in TierPattern.objects.order_by("position")]
    return aliases, patterns


def test_import_export_round_trip_and_idempotence() -> None:
    report = config_import(data={"tiers": TIERS})
    assert {r.action for r in report.of("tier")} == {"created"}
    aliases, patterns = stored()
    assert aliases == {
        "big": ("gpt-4o", False),
        "middle": ("gpt-4o", True),
        "small": ("gpt-4o-mini", False),
    }
    assert patterns[-1] == ("*fast*", "small") and len(patterns) == 4
    exported = config_export()["tiers"]
    assert exported == TIERS
    version = config_version_db()
    again = config_import(data={"tiers": exported})
    assert not again.has_changes and config_version_db() == version


def test_patterns_left_out_mean_the_defaults_and_changes_bump_the_version() -> None:
    config_import(data={"tiers": TIERS})
    version = config_version_db()
    report = config_import(data={"tiers": {"big": "gpt-4o", "small": "mini"}})
    aliases, patterns = stored()
    assert aliases == {"big": ("gpt-4o", False), "small": ("mini", False)}  # middle removed
    assert patterns == []  # the built-in defaults apply
    assert config_version_db() > version
    assert "patterns" not in config_export()["tiers"]
    assert any(r.kind == "tier_pattern" for r in report.results)


def test_no_tiers_section_leaves_the_stored_rules() -> None:
    config_import(data={"tiers": TIERS})
    report = config_import(data={"routing": {"strategy": "priority"}})
    assert [(r.kind, r.action) for r in report.of("tier")] == [("tier", "left")]
    assert len(stored()[1]) == 4


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ({"big": "a", "huge": "b"}, "tiers: unknown key(s) 'huge'"),
        ({"big": 5}, "tiers.big: must be a string"),
        ({"big": "a", "default": "small"}, "tiers.default: tier 'small' has no alias"),
        ({"big": "a", "default": "giant"}, "tiers.default: must be one of big, middle, small"),
        ({"big": "a", "patterns": "*opus*"}, "tiers.patterns: must be a list"),
        ({"big": "a", "patterns": [{"match": "*x*"}]}, "tiers.patterns[0].tier: is required"),
        (
            {"big": "a", "patterns": [{"match": "*x*", "tier": "big", "to": "y"}]},
            "tiers.patterns[0]: unknown key(s) 'to'",
        ),
        (
            {"big": "a", "patterns": [{"match": "*x*", "tier": "huge"}]},
            "tiers.patterns[0].tier:",
        ),
        ({"big": " a"}, "tiers.big: give an alias without leading or trailing spaces"),
        ([1], "tiers: must be a mapping"),
    ],
)
def test_invalid_tiers_name_the_field_and_write_nothing(tiers: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_import(data={"tiers": tiers})
    assert message in str(info.value)
    assert not TierAlias.objects.exists() and not TierPattern.objects.exists()


def test_dry_run_writes_nothing() -> None:
    report = config_import(data={"tiers": TIERS}, dry_run=True)
    assert report.of("tier") and not TierAlias.objects.exists()
