"""Validation of a whole configuration file into a plan of writes (no writes here).

``plan_build`` reads the database, checks every entry (file structure, ``${VAR}`` references,
the models' ``full_clean()``, and the rules only the whole file can check: duplicates, one
primary key per instance, mapping targets), and returns what to create or change. It collects
every error before raising, so one run shows all problems.

Semantics: the file describes each entry it lists completely; a field left out takes the
model's default. Entries in the database but not in the file are left alone. ``***`` (what
export writes for a secret) means "keep the stored secret".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.config_io.base import Checker, Plan
from gateway.config_io.entries_plan import plan_mappings, plan_routing, plan_virtual_keys
from gateway.config_io.errors import ConfigError
from gateway.config_io.providers_plan import plan_providers
from gateway.config_io.schema import SECTIONS
from gateway.config_io.tiers_plan import plan_tiers
from providers.secrets import InvalidToken


def plan_build(*, data: dict[str, Any], environ: Mapping[str, str]) -> Plan:
    """Validate ``data`` (a parsed file) against the database; raise ``ConfigError`` if bad."""
    if not isinstance(data, dict):
        raise ConfigError(["the configuration must be a mapping with providers, mappings, ..."])
    check = Checker(environ)
    unknown = [str(k) for k in data if k not in SECTIONS]
    if unknown:
        check.errors.append(
            f"unknown section(s) {', '.join(repr(k) for k in unknown)}"
            f" (expected: {', '.join(SECTIONS)})"
        )
    plan = Plan()
    try:
        providers, broken = plan_providers(plan, _section(data, "providers", check.errors), check)
    except InvalidToken:
        # Reading the stored keys (to compare them) needs every token to decrypt.
        raise ConfigError(
            [
                "stored provider API keys cannot be decrypted with FIELD_ENCRYPTION_KEYS "
                "(was the key they were encrypted with removed?)"
            ]
        ) from None
    plan_mappings(plan, _section(data, "mappings", check.errors), providers, broken, check)
    plan_virtual_keys(plan, _section(data, "virtual_keys", check.errors), check)
    plan_routing(plan, data, check)
    plan.tiers, plan.tiers_left = plan_tiers(data, check.errors)
    if check.errors:
        raise ConfigError(check.errors)
    return plan


def _section(data: dict[str, Any], name: str, errors: list[str]) -> list[Any]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(f"{name}: must be a list")
        return []
    return value
