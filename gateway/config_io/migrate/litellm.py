"""LiteLLM proxy ``config.yaml`` (``model_list`` and settings) -> our configuration.

Deployments are grouped into provider instances by (provider prefix, ``api_base``,
``api_key``): one instance per distinct endpoint and credential, named from the prefix and
the endpoint's host. Each deployment becomes a mapping of its ``model_name`` (the alias) to
that instance. ``os.environ/VAR`` becomes ``${VAR}``, so secrets stay in the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.config_io.migrate.base import Migration, as_int, env_name, infer_type, slug, url_host
from gateway.config_io.migrate.litellm_bedrock import PARAM_KEYS as BEDROCK_PARAMS
from gateway.config_io.migrate.litellm_bedrock import bedrock_key, bedrock_model, bedrock_params
from gateway.config_io.migrate.litellm_tables import (
    COMPATIBLE_BASES,
    DEFAULT_ENV,
    PREFIX_PRESETS,
    PREFIX_TYPES,
)
from providers.presets import preset_get

DEFAULT_HOSTS = {"api.openai.com", "api.anthropic.com"}
STRATEGIES = {
    "simple-shuffle": "weighted",
    "least-busy": "least_busy",
    "latency-based-routing": "lowest_latency",
    "cost-based-routing": "least_cost",
}
# litellm_params read per deployment (the rest of an entry is listed as not carried over).
PARAM_KEYS = {
    "model",
    "api_base",
    "api_key",
    "api_version",
    "extra_headers",
    "rpm",
    "tpm",
    "order",
    "weight",
    "timeout",
    "max_retries",
    "organization",
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
    "input_cost_per_token",
    "output_cost_per_token",
}
INFO_KEYS = {
    "mode",
    "max_input_tokens",
    "max_output_tokens",
    "input_cost_per_token",
    "output_cost_per_token",
    "supports_vision",
    "supports_function_calling",
}
# Instance fields taken from the first deployment of a group; later ones must agree.
INSTANCE_PARAMS = {
    "api_version": "api_version",
    "extra_headers": "custom_headers",
    "timeout": "timeout",
    "max_retries": "max_retries",
    "_bedrock_region": "region",
    "vertex_project": "project",
    "vertex_location": "location",
}


@dataclass
class _Instance:
    prefix: str
    ptype: str
    base_url: str
    api_key: str
    organization: str
    where: str  # the first deployment's path, for notes
    fields: dict[str, Any] = field(default_factory=dict)
    rpm: list[int] = field(default_factory=list)
    tpm: list[int] = field(default_factory=list)
    name: str = ""


def convert(source: dict[str, Any]) -> Migration:
    """Convert a parsed LiteLLM proxy configuration."""
    result = Migration(source="litellm")
    known = {"model_list", "router_settings", "litellm_settings", "general_settings"}
    result.drop_unknown(
        {k: v for k, v in source.items() if k != "environment_variables"}, known, ""
    )
    if source.get("environment_variables"):
        result.drop("environment_variables", "set these in the gateway's environment instead")
    defaults = _litellm_settings(source.get("litellm_settings"), result)
    entries = source.get("model_list") or []
    if not isinstance(entries, list):
        result.drop("model_list", "must be a list; nothing converted")
        entries = []
    instances: dict[tuple[str, str, str], _Instance] = {}
    planned: list[tuple[_Instance, dict[str, Any]]] = []
    for i, entry in enumerate(entries):
        converted = _deployment(entry, f"model_list[{i}]", instances, result)
        if converted is not None:
            planned.append(converted)
    _name_instances(list(instances.values()))
    providers = [_provider(inst, defaults, result.notes) for inst in instances.values()]
    mappings: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for inst, mapping in planned:
        mapping["provider"] = inst.name
        ident = (mapping["alias"], inst.name, mapping["model"])
        if ident in seen:
            result.notes.append(
                f"{mapping['alias']} -> {inst.name}:{mapping['model']}: listed twice"
            )
            continue
        seen.add(ident)
        mappings.append({k: mapping[k] for k in ("alias", "provider", "model")} | mapping)
    data: dict[str, Any] = {"providers": providers, "mappings": mappings}
    routing = _router_settings(source.get("router_settings"), result)
    if routing:
        data["routing"] = routing
    _general_settings(source.get("general_settings"), result)
    result.data = data
    return result


def _env(value: Any) -> Any:
    """``os.environ/VAR`` -> ``${VAR}``, through nested mappings and lists."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        return "${" + value.removeprefix("os.environ/") + "}"
    if isinstance(value, dict):
        return {k: _env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_env(v) for v in value]
    return value


def _split_model(model: str) -> tuple[str, str]:
    """``azure/my-deployment`` -> (``azure``, ``my-deployment``); a bare name gets a guess."""
    if "/" in model:
        prefix, _, name = model.partition("/")
        return prefix, name
    if model.startswith(("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-")):
        return "openai", model
    if model.startswith("claude"):
        return "anthropic", model
    return "", model


def _deployment(
    entry: Any,
    where: str,
    instances: dict[tuple[str, str, str], _Instance],
    result: Migration,
) -> tuple[_Instance, dict[str, Any]] | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("model_name"), str):
        result.drop(where, "not a deployment with a model_name")
        return None
    alias = entry["model_name"]
    where = f"{where} ({alias})"
    result.drop_unknown(entry, {"model_name", "litellm_params", "model_info"}, f"{where}.")
    params = _env(entry.get("litellm_params") or {})
    if not isinstance(params, dict) or not isinstance(params.get("model"), str):
        result.drop(where, "litellm_params.model is missing")
        return None
    result.drop_unknown(params, PARAM_KEYS | BEDROCK_PARAMS, f"{where}.litellm_params.")
    if "*" in alias or "*" in params["model"]:
        result.drop(where, "wildcard routing has no equivalent; list the models as aliases")
        return None
    prefix, model = _split_model(params["model"])
    ptype = PREFIX_TYPES.get(prefix) or (
        "openai_compatible" if prefix in COMPATIBLE_BASES or prefix in PREFIX_PRESETS else ""
    )
    if not ptype or not model:
        result.drop(where, f"provider {prefix or params['model']!r} is not supported here")
        return None
    env_defaults = DEFAULT_ENV.get(prefix, {})
    base_url = str(params.get("api_base") or "")
    if not base_url and "api_base" in env_defaults:
        base_url = "${" + env_defaults["api_base"] + "}"
        result.notes.append(f"{where}: no api_base; LiteLLM's default {base_url} is used")
    base_url = _normalise_base(ptype, prefix, base_url, where, result)
    if prefix == "openai" and base_url:
        ptype = infer_type(base_url) if url_host(base_url) else "openai_compatible"
    # Vertex: the service-account JSON (inline or a ${VAR}) is the key credential.
    api_key = str(params.get("api_key") or params.get("vertex_credentials") or "")
    if not api_key and "api_key" in env_defaults:
        api_key = "${" + env_defaults["api_key"] + "}"
        result.notes.append(f"{where}: no api_key; LiteLLM's default {api_key} is used")
    if ptype == "azure_openai" and not params.get("api_version") and "api_version" in env_defaults:
        params["api_version"] = "${" + env_defaults["api_version"] + "}"
        result.notes.append(f"{where}: no api_version; LiteLLM's default ${{AZURE_API_VERSION}}")
    region = ""
    if ptype == "bedrock":
        api_key, region = bedrock_params(params, where, result.notes)
        model = bedrock_model(model)
        params["_bedrock_region"] = region  # no LiteLLM name: never from the file
    place = f"{params.get('vertex_project')}/{params.get('vertex_location')}"
    where_to = base_url or (place if ptype == "vertex_ai" else "")
    group = (prefix, f"{where_to} {region}".strip(), api_key)
    inst = instances.get(group)
    if inst is None:
        inst = _Instance(
            prefix=prefix,
            ptype=ptype,
            base_url=base_url,
            api_key=api_key,
            organization=str(params.get("organization") or ""),
            where=where,
        )
        instances[group] = inst
    for src, dst in INSTANCE_PARAMS.items():
        if params.get(src) is None:
            continue
        if dst not in inst.fields:
            inst.fields[dst] = params[src]
        elif inst.fields[dst] != params[src]:
            result.drop(
                f"{where}.litellm_params.{src}",
                f"differs from {inst.where} on the same instance; the first value is kept",
            )
    for src, bucket in (("rpm", inst.rpm), ("tpm", inst.tpm)):
        value = as_int(params.get(src))
        if value is not None:
            bucket.append(value)
        elif params.get(src) is not None:
            result.drop(f"{where}.litellm_params.{src}", "not a whole number")
    mapping: dict[str, Any] = {"alias": alias, "model": model}
    for src, dst in (("order", "priority"), ("weight", "weight")):
        if params.get(src) is not None:
            value = as_int(params[src])
            if value is None:
                result.drop(f"{where}.litellm_params.{src}", "not a whole number")
            else:
                mapping[dst] = value
    _model_info(entry.get("model_info"), params, mapping, where, result)
    return inst, mapping


def _normalise_base(ptype: str, prefix: str, base: str, where: str, result: Migration) -> str:
    """LiteLLM's api_base forms -> ours (Ollama and Anthropic want the ``/v1`` root)."""
    if not base:
        return COMPATIBLE_BASES.get(prefix, "")
    if "${" in base:
        return base
    trimmed = base.rstrip("/")
    if ptype == "anthropic":
        trimmed = trimmed.removesuffix("/messages")
    if ptype in ("anthropic", "ollama") and not trimmed.endswith("/v1"):
        trimmed += "/v1"
    if trimmed != base.rstrip("/"):
        result.notes.append(f"{where}: api_base {base} imported as {trimmed}")
    return trimmed


def _per_million(value: Any) -> float | None:
    try:
        return float((Decimal(str(value)) * 1_000_000).normalize())
    except (InvalidOperation, ValueError):
        return None


def _model_info(
    info: Any, params: dict[str, Any], mapping: dict[str, Any], where: str, result: Migration
) -> None:
    info = info if isinstance(info, dict) else {}
    result.drop_unknown(info, INFO_KEYS, f"{where}.model_info.")
    costs = {
        k: _per_million(params.get(k, info.get(k)))
        for k in ("input_cost_per_token", "output_cost_per_token")
        if params.get(k, info.get(k)) is not None
    }
    if len(costs) == 2 and None not in costs.values():
        mapping["price"] = {
            "input_per_million": costs["input_cost_per_token"],
            "output_per_million": costs["output_cost_per_token"],
        }
    elif costs:
        result.drop(f"{where}: cost per token", "needs both input and output cost as numbers")
    for src, dst in (
        ("max_input_tokens", "max_context_tokens"),
        ("max_output_tokens", "max_output_tokens"),
    ):
        value = as_int(info.get(src))
        if value:
            mapping[dst] = value
    capabilities: dict[str, bool] = {}
    if info.get("mode") == "embedding":
        capabilities.update(chat=False, embeddings=True)
    elif info.get("mode") not in (None, "chat"):
        result.drop(f"{where}.model_info.mode", f"{info['mode']!r} models are not served here")
    for src, dst in (("supports_vision", "vision"), ("supports_function_calling", "tools")):
        if isinstance(info.get(src), bool):
            capabilities[dst] = info[src]
    if capabilities:
        mapping["capabilities"] = capabilities


def _name_instances(instances: list[_Instance]) -> None:
    """Deterministic names: prefix plus endpoint; plus the key's variable when that is not enough.

    ``azure/...`` at ``https://contoso-eastus.openai.azure.com`` -> ``azure-contoso-eastus``;
    at ``os.environ/AZURE_WESTEU_BASE`` -> ``azure-westeu``; two OpenAI keys
    ``OPENAI_API_KEY`` and ``OPENAI_BATCH_KEY`` -> ``openai`` and ``openai-batch``.
    """
    for inst in instances:
        host = url_host(inst.base_url)
        var = env_name(inst.base_url)
        if var:
            inst.name = slug(f"{inst.prefix}-{_distinctive(var, inst.prefix) or var}")
        elif (
            host
            and host not in DEFAULT_HOSTS
            and inst.base_url != COMPATIBLE_BASES.get(inst.prefix)
        ):
            label = host if host[0].isdigit() else host.split(".")[0]
            inst.name = slug(f"{inst.prefix}-{label}")
        else:
            inst.name = slug(inst.prefix)
    clashing = {n for n in (i.name for i in instances) if sum(j.name == n for j in instances) > 1}
    for inst in instances:
        if inst.name in clashing:
            words = _distinctive(env_name(inst.api_key), inst.prefix)
            if words:
                inst.name = slug(f"{inst.name}-{words}")
    counters: dict[str, int] = {}
    for inst in instances:
        counters[inst.name] = counters.get(inst.name, 0) + 1
        if counters[inst.name] > 1:
            inst.name = f"{inst.name}-{counters[inst.name]}"


_GENERIC_WORDS = {"api", "key", "base", "url", "endpoint", "token", "secret"}


def _distinctive(var: str, prefix: str) -> str:
    """The words of an env var name that say which one it is: ``AZURE_WESTEU_BASE`` -> westeu."""
    skip = _GENERIC_WORDS | set(prefix.lower().split("_"))
    return "-".join(w for w in var.lower().split("_") if w and w not in skip)


def _provider(inst: _Instance, defaults: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": inst.name, "type": inst.ptype}
    preset = preset_get(PREFIX_PRESETS.get(inst.prefix, ""))
    if preset is not None and inst.ptype == "openai_compatible":
        out["preset"] = preset.name
    if inst.base_url and (preset is None or inst.base_url.rstrip("/") != preset.base_url):
        out["base_url"] = inst.base_url
    fields = {**defaults, **inst.fields}
    for name in (
        "region",
        "project",
        "location",
        "api_version",
        "timeout",
        "max_retries",
        "custom_headers",
    ):
        if fields.get(name) is not None:
            out[name] = fields[name]
    limits: dict[str, int] = {}
    if inst.rpm:
        limits["requests_per_minute"] = sum(inst.rpm)
    if inst.tpm:
        limits["tokens_per_minute"] = sum(inst.tpm)
    if len(inst.rpm) > 1 or len(inst.tpm) > 1:
        notes.append(
            f"{inst.name}: rate_limit is the sum of its deployments' rpm/tpm (LiteLLM limits "
            "each deployment; this gateway limits the instance)"
        )
    if limits:
        out["rate_limit"] = limits
    if inst.api_key and inst.ptype == "bedrock":
        out["keys"] = [bedrock_key(inst.api_key)]
    elif inst.api_key:
        key: dict[str, Any] = {"name": "default", "api_key": inst.api_key, "primary": True}
        if inst.organization:
            key["organization"] = inst.organization
        out["keys"] = [key]
    return out


def _litellm_settings(settings: Any, result: Migration) -> dict[str, Any]:
    """``request_timeout`` and ``num_retries`` become every instance's defaults."""
    if not isinstance(settings, dict):
        return {}
    defaults: dict[str, Any] = {}
    for src, dst in (("request_timeout", "timeout"), ("num_retries", "max_retries")):
        if settings.get(src) is not None:
            defaults[dst] = settings[src]
    result.drop_unknown(settings, {"request_timeout", "num_retries"}, "litellm_settings.")
    return defaults


def _router_settings(settings: Any, result: Migration) -> dict[str, Any]:
    if not isinstance(settings, dict):
        return {}
    routing: dict[str, Any] = {}
    strategy = settings.get("routing_strategy")
    if strategy is not None:
        if strategy in STRATEGIES:
            routing["strategy"] = STRATEGIES[strategy]
        else:
            result.drop("router_settings.routing_strategy", f"{strategy!r} has no equivalent")
    breaker: dict[str, Any] = {}
    for src, dst in (("allowed_fails", "failure_threshold"), ("cooldown_time", "recovery_timeout")):
        if settings.get(src) is not None:
            value = as_int(settings[src])
            if value is None:
                result.drop(f"router_settings.{src}", "not a whole number")
            else:
                breaker[dst] = value
    if breaker:
        routing["circuit_breaker"] = breaker
    result.drop_unknown(
        settings, {"routing_strategy", "allowed_fails", "cooldown_time"}, "router_settings."
    )
    return routing


def _general_settings(settings: Any, result: Migration) -> None:
    if not isinstance(settings, dict):
        return
    for key in settings:
        if key == "master_key":
            result.drop(
                "general_settings.master_key",
                "this gateway issues its own virtual keys; create one per application",
            )
        else:
            result.drop(f"general_settings.{key}", "no equivalent here")
