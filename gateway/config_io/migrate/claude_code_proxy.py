"""Claude Code Proxy's multi-provider ``providers.json`` -> our configuration.

Each provider becomes an instance with one key; its ``models: {big, middle, small}`` lists
become the aliases ``tier-big``, ``tier-middle``, ``tier-small`` and the ``tiers`` section that
sends Claude model names (opus / sonnet / haiku) to them.

Priorities: a provider's first model of a tier is mapped at the provider's ``priority``. Later
models of the list are fallbacks on the same instance, tried only after every provider's first
choice: model ``i`` (0-based) gets ``priority + i * (highest priority + 1)``.
"""

from __future__ import annotations

from typing import Any

from gateway.config_io.migrate.base import (
    Migration,
    as_int,
    env_name,
    infer_type,
)

TIERS = ("big", "middle", "small")
# Which Claude model names each tier serves, as claude-code-proxy routes them.
TIER_PATTERNS = {"big": "*opus*", "middle": "*sonnet*", "small": "*haiku*"}
STRATEGIES = {"priority": "priority", "round_robin": "round_robin", "random": "random"}
PROVIDER_KEYS = {
    "name",
    "enabled",
    "priority",
    "api_key",
    "base_url",
    "api_version",
    "timeout",
    "max_retries",
    "custom_headers",
    "models",
}
TOP_KEYS = {"providers", "fallback_strategy", "health_check_interval", "circuit_breaker"}


def convert(source: dict[str, Any]) -> Migration:
    """Convert a parsed claude-code-proxy provider configuration."""
    result = Migration(source="claude-code-proxy")
    result.drop_unknown(source, TOP_KEYS, "")
    raw = source.get("providers") or []
    if not isinstance(raw, list):
        result.drop("providers", "must be a list; nothing converted")
        raw = []
    interval = source.get("health_check_interval")
    providers: list[dict[str, Any]] = []
    tier_models: list[tuple[str, int, dict[str, list[str]]]] = []  # (name, priority, models)
    for i, entry in enumerate(raw):
        where = f"providers[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            result.drop(where, "not a provider with a name")
            continue
        name = entry["name"]
        where = f"{where} ({name})"
        result.drop_unknown(entry, PROVIDER_KEYS, f"{where}.")
        providers.append(_provider(entry, interval, where, result))
        priority = as_int(entry.get("priority", 1))
        if priority is None or priority < 0:
            result.drop(f"{where}.priority", f"{entry.get('priority')!r} is not a priority")
            priority = 1
        tier_models.append((name, priority, _models(entry.get("models"), where, result)))
    data: dict[str, Any] = {"providers": providers}
    mappings, tiers = _tier_mappings(tier_models)
    data["mappings"] = mappings
    if tiers:
        data["tiers"] = tiers
    routing = _routing(source, result)
    if routing:
        data["routing"] = routing
    result.data = data
    return result


def _provider(
    entry: dict[str, Any], interval: Any, where: str, result: Migration
) -> dict[str, Any]:
    base_url = entry.get("base_url") or ""
    api_version = entry.get("api_version")
    if api_version:
        ptype = "azure_openai"
    else:
        ptype = infer_type(base_url if isinstance(base_url, str) else "")
        if env_name(base_url):
            result.notes.append(
                f"{where}: base_url is {base_url}, so the type cannot be read from the host; "
                f"imported as {ptype} (edit the type if it is OpenAI, Anthropic or Ollama)"
            )
    out: dict[str, Any] = {"name": entry["name"], "type": ptype}
    if base_url:
        out["base_url"] = base_url
    for key in ("enabled", "api_version", "timeout", "max_retries", "custom_headers"):
        if entry.get(key) is not None:
            out[key] = entry[key]
    if interval is not None:
        out["health_check"] = {"interval": interval}
    if entry.get("api_key"):
        out["keys"] = [{"name": "default", "api_key": entry["api_key"], "primary": True}]
    return out


def _models(models: Any, where: str, result: Migration) -> dict[str, list[str]]:
    if models is None:
        return {}
    if not isinstance(models, dict):
        result.drop(f"{where}.models", "must be a mapping of big/middle/small to model lists")
        return {}
    out: dict[str, list[str]] = {}
    for tier, names in models.items():
        if tier not in TIERS:
            result.drop(f"{where}.models.{tier}", "not a tier (big, middle, small)")
            continue
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            result.drop(f"{where}.models.{tier}", "must be a list of model names")
            continue
        out[tier] = list(dict.fromkeys(n for n in names if n))  # dedupe, keep order
    return out


def _tier_mappings(
    tier_models: list[tuple[str, int, dict[str, list[str]]]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    span = max((p for _, p, _ in tier_models), default=0) + 1
    mappings: list[dict[str, Any]] = []
    tiers: dict[str, Any] = {}
    for tier in TIERS:
        alias = f"tier-{tier}"
        for provider, priority, models in tier_models:
            for i, model in enumerate(models.get(tier, [])):
                mappings.append(
                    {
                        "alias": alias,
                        "provider": provider,
                        "model": model,
                        "priority": priority + i * span,
                    }
                )
                tiers[tier] = alias
    if tiers:
        present = [t for t in TIERS if t in tiers]
        tiers["patterns"] = [{"match": TIER_PATTERNS[t], "tier": t} for t in present]
        # Claude names matching no pattern go to the biggest tier there is.
        tiers["default"] = present[0]
    return mappings, tiers


def _routing(source: dict[str, Any], result: Migration) -> dict[str, Any]:
    routing: dict[str, Any] = {}
    strategy = source.get("fallback_strategy")
    if strategy is not None:
        if strategy in STRATEGIES:
            routing["strategy"] = STRATEGIES[strategy]
        else:
            result.drop("fallback_strategy", f"{strategy!r} has no equivalent strategy here")
    breaker = source.get("circuit_breaker")
    if isinstance(breaker, dict):
        known = {"failure_threshold", "recovery_timeout"}
        result.drop_unknown(breaker, known, "circuit_breaker.")
        kept = {k: v for k, v in breaker.items() if k in known}
        if kept:
            routing["circuit_breaker"] = kept
    elif breaker is not None:
        result.drop("circuit_breaker", "must be a mapping")
    return routing
