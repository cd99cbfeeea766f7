"""Planning provider instances and their keys."""

from __future__ import annotations

from typing import Any

from gateway.config_io.base import (
    REDACTED_NEW,
    Checker,
    Item,
    Plan,
    ProviderItem,
    apply_values,
    diff_into,
    snapshot,
)
from gateway.config_io.schema import (
    KEY_FIELDS,
    PROVIDER_EXTRA,
    PROVIDER_FIELDS,
    REDACTED,
    entry_label,
    parse_entry,
)
from providers.models import Provider, ProviderKeyCredential
from providers.types import KEYLESS_TYPES


def plan_providers(
    plan: Plan, entries: list[Any], check: Checker
) -> tuple[dict[str, Provider], set[str]]:
    """Plan providers and their keys; return providers by name and names of broken entries."""
    existing = {p.name: p for p in Provider.objects.all()}
    stored_keys: dict[int, dict[str, ProviderKeyCredential]] = {}
    for key in ProviderKeyCredential.objects.all():
        stored_keys.setdefault(key.provider_id, {})[key.key_name] = key
    seen: dict[str, str] = {}
    broken: set[str] = set()
    for i, entry in enumerate(entries):
        label = entry_label(i, "providers", entry, "name")
        values = parse_entry(entry, PROVIDER_FIELDS, label, check.errors, extra=PROVIDER_EXTRA)
        if values is None:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                broken.add(entry["name"])  # so mappings naming it add no second error
            continue
        name = values["name"]
        if name in seen:
            check.errors.append(f"{label}.name: duplicate provider name (also {seen[name]})")
            continue
        seen[name] = label
        obj = existing.get(name) or Provider()
        item = ProviderItem(obj=obj, label=name, is_new=obj.pk is None)
        before = snapshot(obj, PROVIDER_FIELDS)
        apply_values(obj, PROVIDER_FIELDS, values)
        obj.custom_headers = _unredact_headers(obj.custom_headers, before, label, check)
        check.refs(obj.base_url, f"{label}.base_url")
        if isinstance(obj.custom_headers, dict):
            for header, value in obj.custom_headers.items():
                if isinstance(value, str):
                    check.refs(value, f"{label}.custom_headers.{header}")
        check.clean(obj, label, PROVIDER_FIELDS)
        diff_into(item, before, PROVIDER_FIELDS)
        stored = {} if item.is_new else stored_keys.get(obj.pk, {})
        _plan_keys(item, values.get("keys"), stored, label, check)
        listed = {k.obj.key_name for k in item.keys}
        plan.left.extend(("key", f"{name}/{k}") for k in stored if k not in listed)
        plan.providers.append(item)
    plan.left.extend(("provider", n) for n in existing if n not in seen and n not in broken)
    by_name = {item.obj.name: item.obj for item in plan.providers}
    return {**existing, **by_name}, broken


def _unredact_headers(headers: Any, before: dict[str, Any], label: str, check: Checker) -> Any:
    """Replace ``***`` header values with the stored ones (export redacts secret headers)."""
    if not isinstance(headers, dict):
        return headers
    stored = {str(k).lower(): v for k, v in (before.get("custom_headers") or {}).items()}
    result = dict(headers)
    for name, value in headers.items():
        if value == REDACTED:
            if name.lower() in stored:
                result[name] = stored[name.lower()]
            else:
                check.errors.append(f"{label}.custom_headers.{name}: {REDACTED_NEW} value")
    return result


def _plan_keys(
    provider: ProviderItem,
    entries: Any,
    stored: dict[str, ProviderKeyCredential],
    label: str,
    check: Checker,
) -> None:
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        check.errors.append(f"{label}.keys: must be a list")
        return
    seen: dict[str, str] = {}
    primary: str | None = None
    for j, entry in enumerate(entries):
        klabel = f"{label}.keys[{j}]"
        values = parse_entry(entry, KEY_FIELDS, klabel, check.errors)
        if values is None:
            continue
        name = values["name"]
        if name in seen:
            check.errors.append(f"{klabel}.name: duplicate key name (also {seen[name]})")
            continue
        seen[name] = f"keys[{j}]"
        obj = stored.get(name) or ProviderKeyCredential()
        item: Item[ProviderKeyCredential] = Item(
            obj=obj, label=f"{provider.obj.name}/{name}", is_new=obj.pk is None
        )
        before = snapshot(obj, KEY_FIELDS)
        apply_values(obj, KEY_FIELDS, values)
        obj.provider = provider.obj
        if obj.api_key == REDACTED:
            if item.is_new:
                check.errors.append(f"{klabel}.api_key: {REDACTED_NEW}")
            else:
                obj.api_key = before["api_key"]
        check.refs(obj.api_key, f"{klabel}.api_key")
        check.refs(obj.base_url, f"{klabel}.base_url")
        if provider.is_new and not obj.api_key and provider.obj.provider_type not in KEYLESS_TYPES:
            # The model checks this itself only once the instance exists in the database.
            check.errors.append(
                f"{klabel}.api_key: {provider.obj.provider_type} keys need an api_key"
            )
        if obj.is_primary and primary is not None:
            check.errors.append(
                f"{klabel}.primary: only one primary key per instance ({primary} is primary too)"
            )
        if obj.is_primary:
            primary = f"keys[{j}] ({name})"
        # The model checks "one primary" against the database, but the file may move the
        # primary flag between keys; the file-wide check above and below replaces it.
        wants_primary, obj.is_primary = obj.is_primary, False
        check.clean(obj, klabel, KEY_FIELDS, exclude={"provider"} if provider.is_new else None)
        obj.is_primary = wants_primary
        diff_into(item, before, KEY_FIELDS)
        provider.keys.append(item)
    if primary is not None:
        for name, key in stored.items():
            if name not in seen and key.is_primary:
                check.errors.append(
                    f"{label}.keys: {primary} is primary, but so is key {name!r}, which is not in"
                    " the file (list it with primary: false)"
                )
