"""Configuration export: the database as a configuration file, secrets redacted."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

from gateway.config_io.schema import (
    KEY_FIELDS,
    MAPPING_FIELDS,
    PRICE_ATTRS,
    PROVIDER_FIELDS,
    REDACTED,
    ROUTING_FIELDS,
    VIRTUAL_KEY_FIELDS,
    Field,
    is_sensitive_header,
    nest,
)
from gateway.config_io.tiers_plan import export_tiers
from gateway.keys.models import RoutingSettings, VirtualKey
from mappings.models import AliasRoutingPolicy, ModelPrice, ModelProviderMapping
from providers.aws import credentials_split
from providers.envsubst import references, substitute_unchecked
from providers.models import Provider, ProviderKeyCredential
from providers.types import ProviderType


def config_export() -> dict[str, Any]:
    """Every provider, key, mapping (with its current price), virtual key and routing setting.

    The result has the import format, so ``config_import(data=config_export())`` changes
    nothing. It holds no secret: API keys and credential-like header values are exported as
    their ``${VAR}`` reference when they are one and as ``***`` otherwise; virtual keys are
    exported without their key (only its hash is stored anyway).
    """
    data: dict[str, Any] = {
        "providers": _providers(),
        "mappings": _mappings(),
        "virtual_keys": [_entry(v, VIRTUAL_KEY_FIELDS) for v in VirtualKey.objects.order_by("id")],
    }
    for entry in data["virtual_keys"]:
        if "amount" not in entry.get("budget", {}):
            # No budget: period and threshold are inert defaults, not worth a line each.
            entry.pop("budget", None)
    routing = RoutingSettings.objects.filter(pk=1).first()  # a selector writes nothing
    if routing is not None:
        data["routing"] = _entry(routing, ROUTING_FIELDS)
    aliases = dict(AliasRoutingPolicy.objects.order_by("alias").values_list("alias", "strategy"))
    if aliases:
        data.setdefault("routing", {})["aliases"] = aliases
    tiers = export_tiers()
    if tiers is not None:
        data["tiers"] = tiers
    return data


def redact_secret(value: str) -> str:
    """A secret as it may be exported: a pure ``${VAR}`` reference as is, anything else ``***``.

    ``Bearer ${TOKEN}`` is redacted too: only a value with no literal text is known to hold
    no secret.
    """
    if not value:
        return value
    names = references(value)
    if names and substitute_unchecked(value, dict.fromkeys(names, "")) == "":
        return value
    return REDACTED


def _providers() -> list[dict[str, Any]]:
    keys: dict[int, list[ProviderKeyCredential]] = {}
    for key in ProviderKeyCredential.objects.order_by("provider_id", "id"):
        keys.setdefault(key.provider_id, []).append(key)
    result = []
    for provider in Provider.objects.order_by("id"):
        entry = _entry(provider, PROVIDER_FIELDS)
        if "custom_headers" in entry:
            entry["custom_headers"] = {
                name: redact_secret(value) if is_sensitive_header(name) else value
                for name, value in entry["custom_headers"].items()
            }
        key_entries = []
        for key in keys.get(provider.pk, []):
            key_entry = _entry(key, KEY_FIELDS)
            creds = (
                credentials_split(key.api_key or "")
                if provider.provider_type == ProviderType.BEDROCK
                else None
            )
            if creds is not None:
                # The access key id names the key (AWS shows it freely); the rest is secret.
                del key_entry["api_key"]
                key_entry["access_key_id"] = creds.access_key_id
                key_entry["secret_access_key"] = redact_secret(creds.secret_access_key)
                if creds.session_token:
                    key_entry["session_token"] = redact_secret(creds.session_token)
            elif "api_key" in key_entry:
                key_entry["api_key"] = redact_secret(key_entry["api_key"])
            key_entries.append(key_entry)
        if key_entries:
            entry["keys"] = key_entries
        result.append(entry)
    return result


def _mappings() -> list[dict[str, Any]]:
    now = timezone.now()
    current: dict[int, ModelPrice] = {}
    # Newest first, so the first price seen per mapping is the one in effect now.
    prices = ModelPrice.objects.filter(mapping__isnull=False, effective_from__lte=now).order_by(
        "-effective_from", "-id"
    )
    for price in prices:
        assert price.mapping_id is not None
        current.setdefault(price.mapping_id, price)
    result = []
    mappings = ModelProviderMapping.objects.select_related("provider").order_by(
        "model_alias", "priority", "id"
    )
    for mapping in mappings:
        flat = _flat(mapping, MAPPING_FIELDS)
        flat["provider"] = mapping.provider.name
        in_effect = current.get(mapping.pk)
        for f in MAPPING_FIELDS:
            if f.attr in PRICE_ATTRS and in_effect is not None:
                flat[f.path] = _plain(getattr(in_effect, f.attr))
        result.append(nest(_compact(flat)))
    return result


def _entry(obj: models.Model, fields: tuple[Field, ...]) -> dict[str, Any]:
    return nest(_compact(_flat(obj, fields)))


def _flat(obj: models.Model, fields: tuple[Field, ...]) -> dict[str, Any]:
    """``{file path: value}`` in table order; fields without a model attribute as None."""
    return {
        f.path: _plain(getattr(obj, f.attr)) if f.attr and f.attr not in PRICE_ATTRS else None
        for f in fields
    }


def _compact(flat: dict[str, Any]) -> dict[str, Any]:
    # Empty values equal the model defaults the importer applies, so leaving them out keeps
    # the file short without changing what it means.
    return {k: v for k, v in flat.items() if v not in (None, "", {}, [])}


def _plain(value: Any) -> Any:
    """A value YAML and JSON both write: Decimals as numbers, datetimes as ISO strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value
