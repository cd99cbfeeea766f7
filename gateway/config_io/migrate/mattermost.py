"""Mattermost AI plugin ``services`` and ``bots`` -> our configuration.

Each service becomes a provider instance with one key, and its ``defaultModel`` an alias named
after the service. Each bot becomes a virtual key restricted to its service's alias; the key
itself is generated at import and shown once in the report.
"""

from __future__ import annotations

from typing import Any

from gateway.config_io.migrate.base import Migration, as_int

TYPES = {
    "openai": "openai",
    "openai_compatible": "openai_compatible",
    "openaicompatible": "openai_compatible",
    "azure": "azure_openai",
    "anthropic": "anthropic",
}
# Mattermost's Azure service has no API version field; the plugin picks one itself.
AZURE_API_VERSION = "2024-10-21"
SERVICE_KEYS = {
    "id",
    "name",
    "type",
    "apiKey",
    "apiURL",
    "orgId",
    "defaultModel",
    "customHeaders",
    "tokenLimit",
    "outputTokenLimit",
}
BOT_KEYS = {"id", "name", "displayName", "service", "serviceID"}
TOP_KEYS = {"services", "bots"}


def convert(source: dict[str, Any]) -> Migration:
    """Convert a parsed Mattermost AI plugin configuration (``{"config": {...}}`` too)."""
    result = Migration(source="mattermost")
    if set(source) == {"config"} and isinstance(source["config"], dict):
        source = source["config"]
    result.drop_unknown(source, TOP_KEYS, "")
    services = _list(source, "services", result)
    bots = _list(source, "bots", result)
    # A bot may embed its service instead of naming one from `services`: convert it too.
    listed = {s.get("name") for s in services if isinstance(s, dict)}
    for j, bot in enumerate(bots):
        embedded = bot.get("service") if isinstance(bot, dict) else None
        if isinstance(embedded, dict) and embedded.get("name") not in listed:
            services.append(embedded)
            listed.add(embedded.get("name"))
            result.notes.append(f"bots[{j}].service: not in services; converted as a service")
    providers: list[dict[str, Any]] = []
    mappings: list[dict[str, Any]] = []
    aliases: dict[str, str] = {}  # service name or id -> alias
    for i, service in enumerate(services):
        converted = _service(service, f"services[{i}]", result)
        if converted is None:
            continue
        provider, mapping = converted
        providers.append(provider)
        if mapping is not None:
            mappings.append(mapping)
            aliases[provider["name"]] = mapping["alias"]
            if isinstance(service.get("id"), str) and service["id"]:
                aliases[service["id"]] = mapping["alias"]
    virtual_keys = [
        vkey
        for j, bot in enumerate(bots)
        if (vkey := _bot(bot, f"bots[{j}]", aliases, result)) is not None
    ]
    data: dict[str, Any] = {"providers": providers, "mappings": mappings}
    if virtual_keys:
        data["virtual_keys"] = virtual_keys
    result.data = data
    return result


def _list(source: dict[str, Any], name: str, result: Migration) -> list[Any]:
    value = source.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        result.drop(name, "must be a list; nothing converted")
        return []
    return list(value)


def _service(
    service: Any, where: str, result: Migration
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    if not isinstance(service, dict) or not isinstance(service.get("name"), str):
        result.drop(where, "not a service with a name")
        return None
    name = service["name"]
    where = f"{where} ({name})"
    result.drop_unknown(service, SERVICE_KEYS, f"{where}.")
    kind = str(service.get("type") or "").lower()
    ptype = TYPES.get(kind)
    if ptype is None:
        result.drop(where, f"service type {service.get('type')!r} is not supported here")
        return None
    provider: dict[str, Any] = {"name": name, "type": ptype}
    if service.get("apiURL"):
        provider["base_url"] = service["apiURL"]
    if ptype == "azure_openai":
        provider["api_version"] = AZURE_API_VERSION
        result.notes.append(f"{where}: api_version set to {AZURE_API_VERSION} (check it)")
    if service.get("customHeaders"):
        provider["custom_headers"] = service["customHeaders"]
    if service.get("apiKey"):
        key: dict[str, Any] = {"name": "default", "api_key": service["apiKey"], "primary": True}
        if service.get("orgId"):
            key["organization"] = service["orgId"]
        provider["keys"] = [key]
    elif service.get("orgId"):
        result.drop(f"{where}.orgId", "an organization needs an API key to belong to")
    model = service.get("defaultModel")
    if not model:
        result.drop(where, "no defaultModel, so no alias (and none of its bots) carried over")
        return provider, None
    mapping: dict[str, Any] = {"alias": name, "provider": name, "model": model}
    for src, dst in (
        ("tokenLimit", "max_context_tokens"),
        ("outputTokenLimit", "max_output_tokens"),
    ):
        limit = as_int(service.get(src))
        if limit:  # Mattermost writes 0 for "not set"
            mapping[dst] = limit
    return provider, mapping


def _bot(bot: Any, where: str, aliases: dict[str, str], result: Migration) -> dict[str, Any] | None:
    if not isinstance(bot, dict) or not isinstance(bot.get("name"), str):
        result.drop(where, "not a bot with a name")
        return None
    name = bot["name"]
    where = f"{where} ({name})"
    result.drop_unknown(bot, BOT_KEYS, f"{where}.")
    service = bot.get("service")
    ref = service.get("name") if isinstance(service, dict) else bot.get("serviceID")
    alias = aliases.get(ref) if isinstance(ref, str) else None
    if alias is None:
        result.drop(where, f"its service {ref!r} was not carried over, so no virtual key")
        return None
    return {"name": name, "models": [alias]}
