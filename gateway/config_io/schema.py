"""The configuration file's shape: which keys each section takes and how they map to models.

One table per entity pairs a dotted file path (``rate_limit.requests_per_minute``) with the
model attribute it sets and a converter. The importer checks structure and types from these
tables, the exporter writes from them, and error messages translate model field names back to
file paths with them, so the three cannot drift apart.

Values the models validate (ranges, choices, header syntax) are left to ``full_clean()``; the
converters here only check JSON types, so a typo'd type is reported once, in file terms.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from providers import redaction

# Written by `export` in place of a secret; on import it means "keep the stored secret".
REDACTED = "***"

SECTIONS = ("providers", "mappings", "virtual_keys", "routing", "tiers")


class ConvertError(ValueError):
    """A value has the wrong JSON type for its field."""


def as_str(value: Any) -> str:
    """``value`` as a string, or ConvertError (no coercion: YAML's ``yes`` is not text)."""
    if not isinstance(value, str):
        raise ConvertError("must be a string")
    return value


def _str_opt(value: Any) -> str:
    return "" if value is None else as_str(value)


def _version_opt(value: Any) -> str:
    # YAML reads an unquoted `api_version: 2024-10-21` as a date; the user meant the string.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    return _str_opt(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConvertError("must be true or false")
    return value


def _bool_opt(value: Any) -> bool | None:
    # A capability: null (like leaving the key out) is undeclared.
    return None if value is None else _bool(value)


def _int(value: Any) -> int:
    # bool is an int subclass; `enabled: 1` style mix-ups should not pass as numbers.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConvertError("must be an integer")
    return value


def _int_opt(value: Any) -> int | None:
    return None if value is None else _int(value)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConvertError("must be a number")
    return float(value)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ConvertError("must be a number")
    try:
        # str() first: Decimal(2.5) would carry the float's binary noise into the database.
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConvertError("must be a number") from None
    if not result.is_finite():
        raise ConvertError("must be a finite number")
    return result


def _decimal_opt(value: Any) -> Decimal | None:
    return None if value is None else _decimal(value)


def _datetime_opt(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        parsed: dt.datetime | None = value
    elif isinstance(value, dt.date):  # YAML turns `2026-01-01` into a date
        parsed = dt.datetime.combine(value, dt.time.min)
    elif isinstance(value, str):
        parsed = parse_datetime(value.strip())
    else:
        parsed = None
    if parsed is None:
        raise ConvertError("must be an ISO 8601 date-time, e.g. 2026-01-31T00:00:00Z")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _str_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConvertError("must be a mapping of name: value")
    # Values are checked by the model (header rules); keys must at least be strings.
    if not all(isinstance(k, str) for k in value):
        raise ConvertError("names must be strings")
    return dict(value)


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConvertError("must be a list of strings")
    return list(value)


def _str_list_opt(value: Any) -> list[str] | None:
    return None if value is None else _str_list(value)


@dataclass(frozen=True)
class Field:
    """One leaf of an entry: file path, model attribute, converter."""

    path: str  # dotted, relative to the entry: "rate_limit.requests_per_minute"
    attr: str  # model attribute; "" for values the importer handles itself
    convert: Callable[[Any], Any]
    required: bool = False


PROVIDER_FIELDS = (
    Field("name", "name", as_str, required=True),
    Field("type", "provider_type", as_str, required=True),
    Field("base_url", "base_url", _str_opt),
    Field("preset", "preset", _str_opt),
    Field("region", "region", _str_opt),
    Field("project", "project", _str_opt),  # vertex_ai
    Field("location", "location", _str_opt),  # vertex_ai
    Field("enabled", "is_enabled", _bool),
    Field("api_version", "api_version", _version_opt),
    Field("timeout", "timeout", _float),
    Field("connect_timeout", "connect_timeout", _float),
    Field("max_retries", "max_retries", _int),
    Field("custom_headers", "custom_headers", _str_dict),
    Field("forward_headers", "forward_headers", _str_list),
    # Absent or null: the built-in default list (providers.betas); ["*"]: any; []: none.
    Field("anthropic_beta_allow", "anthropic_beta_allow", _str_list_opt),
    Field("rate_limit.requests_per_minute", "requests_per_minute", _int_opt),
    Field("rate_limit.tokens_per_minute", "tokens_per_minute", _int_opt),
    Field("health_check.interval", "health_check_interval", _int),
    Field("health_check.model", "health_check_model", _str_opt),
    Field("health_check.probe", "health_check_probe", as_str),
)
# `keys` is a list of KEY_FIELDS entries, handled by the importer.
PROVIDER_EXTRA = ("keys",)

KEY_FIELDS = (
    Field("name", "key_name", as_str, required=True),
    Field("api_key", "api_key", _str_opt),
    # Bedrock keys: AWS credentials, stored composed in api_key (providers.aws).
    Field("access_key_id", "", _str_opt),
    Field("secret_access_key", "", _str_opt),
    Field("session_token", "", _str_opt),
    Field("account_group", "account_group", _int),
    Field("primary", "is_primary", _bool),
    Field("enabled", "is_enabled", _bool),
    Field("base_url", "base_url", _str_opt),
    Field("organization", "organization", _str_opt),
)

MAPPING_FIELDS = (
    Field("alias", "model_alias", as_str, required=True),
    Field("provider", "", as_str, required=True),  # instance name -> provider ID
    Field("model", "provider_model_id", as_str, required=True),
    Field("priority", "priority", _int),
    Field("weight", "weight", _int),
    Field("enabled", "is_enabled", _bool),
    Field("capabilities.chat", "supports_chat", _bool_opt),
    Field("capabilities.vision", "supports_vision", _bool_opt),
    Field("capabilities.tools", "supports_tools", _bool_opt),
    Field("capabilities.streaming", "supports_streaming", _bool_opt),
    Field("capabilities.embeddings", "supports_embeddings", _bool_opt),
    Field("capabilities.json_mode", "supports_json_mode", _bool_opt),
    Field("capabilities.reasoning", "supports_reasoning", _bool_opt),
    Field("max_context_tokens", "max_context_tokens", _int_opt),
    Field("max_output_tokens", "max_output_tokens", _int_opt),
    # Not mapping attributes: a price becomes a ModelPrice row of the mapping.
    Field("price.input_per_million", "input_per_million", _decimal),
    Field("price.output_per_million", "output_per_million", _decimal),
    Field("price.cached_input_per_million", "cached_input_per_million", _decimal_opt),
)
PRICE_ATTRS = ("input_per_million", "output_per_million", "cached_input_per_million")

VIRTUAL_KEY_FIELDS = (
    Field("name", "name", as_str, required=True),
    Field("key", "", _str_opt),  # resolved, hashed, never stored
    Field("models", "allowed_models", _str_list),
    Field("expires_at", "expires_at", _datetime_opt),
    Field("enabled", "is_enabled", _bool),
    Field("budget.amount", "budget_amount", _decimal_opt),
    Field("budget.period", "budget_period", as_str),
    Field("budget.alert_threshold", "budget_alert_threshold", _decimal),
    Field("rate_limit.requests_per_minute", "requests_per_minute", _int_opt),
    Field("rate_limit.tokens_per_minute", "tokens_per_minute", _int_opt),
)

ROUTING_FIELDS = (
    Field("strategy", "strategy", as_str),
    Field("circuit_breaker.failure_threshold", "failure_threshold", _int),
    Field("circuit_breaker.recovery_timeout", "recovery_timeout", _int),
)

# ``routing.aliases``: {alias: strategy}, one AliasRoutingPolicy row per alias.
ALIAS_POLICY_FIELDS = (
    Field("alias", "alias", as_str),
    Field("strategy", "strategy", as_str),
)

_MISSING = object()


def entry_label(index: int, section: str, entry: Any, name_key: str) -> str:
    """``providers[1] (openai-dev)``: the position, plus the name when there is one."""
    name = entry.get(name_key) if isinstance(entry, dict) else None
    return (
        f"{section}[{index}] ({name})" if isinstance(name, str) and name else f"{section}[{index}]"
    )


def parse_entry(
    entry: Any,
    fields: tuple[Field, ...],
    label: str,
    errors: list[str],
    *,
    extra: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """Check one entry against ``fields``; return ``{path: converted value}`` of given paths.

    Unknown keys at any nesting level are errors (that is how typos are caught). Paths left
    out are absent from the result: the caller decides what "not given" means.
    """
    if not isinstance(entry, dict):
        errors.append(f"{label}: must be a mapping")
        return None
    allowed: dict[str, set[str]] = {"": set(extra)}  # parent path -> child names
    for field in fields:
        parts = field.path.split(".")
        for depth in range(len(parts)):
            parent = ".".join(parts[:depth])
            allowed.setdefault(parent, set()).add(parts[depth])
    ok = _check_keys(entry, "", allowed, label, errors)
    result: dict[str, Any] = {}
    for field in fields:
        value = _lookup(entry, field.path)
        if value is _MISSING:
            if field.required:
                errors.append(f"{label}.{field.path}: is required")
                ok = False
            continue
        try:
            result[field.path] = field.convert(value)
        except ConvertError as exc:
            errors.append(f"{label}.{field.path}: {exc}")
            ok = False
    for name in extra:
        if name in entry:
            result[name] = entry[name]
    return result if ok else None


def _check_keys(
    node: dict[str, Any], prefix: str, allowed: dict[str, set[str]], label: str, errors: list[str]
) -> bool:
    ok = True
    names = allowed.get(prefix, set())
    unknown = [str(k) for k in node if k not in names]
    if unknown:
        where = f"{label}.{prefix}" if prefix else label
        errors.append(
            f"{where}: unknown key(s) {', '.join(repr(k) for k in unknown)}"
            f" (expected one of: {', '.join(sorted(names))})"
        )
        ok = False
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if path in allowed:  # a nested object
            if value is None:
                continue
            if not isinstance(value, dict):
                errors.append(f"{label}.{path}: must be a mapping")
                ok = False
            elif not _check_keys(value, path, allowed, label, errors):
                ok = False
    return ok


def _lookup(entry: dict[str, Any], path: str) -> Any:
    node: Any = entry
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def file_path(fields: tuple[Field, ...], attr: str) -> str:
    """The file path of model attribute ``attr`` (for error messages); ``attr`` if unknown."""
    for field in fields:
        if field.attr == attr:
            return field.path
    return attr


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}`` (insertion order kept)."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


# Custom header names that usually carry credentials: their literal values are redacted on
# export (a ${VAR} reference is not a secret and is exported as written). The same test
# decides what is redacted from upstream error text.
is_sensitive_header = redaction.is_sensitive_header
