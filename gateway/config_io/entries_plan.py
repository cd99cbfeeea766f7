"""Planning mappings (with prices), virtual keys and routing settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from gateway.config_io.base import (
    REDACTED_NEW,
    Checker,
    Item,
    MappingItem,
    Plan,
    VirtualKeyItem,
    apply_values,
    diff_into,
    snapshot,
)
from gateway.config_io.schema import (
    ALIAS_POLICY_FIELDS,
    MAPPING_FIELDS,
    PRICE_ATTRS,
    REDACTED,
    ROUTING_FIELDS,
    VIRTUAL_KEY_FIELDS,
    entry_label,
    file_path,
    parse_entry,
)
from gateway.keys.models import (
    RoutingSettings,
    VirtualKey,
    generate_key,
    hash_key,
    virtual_key_weakness,
)
from mappings.models import AliasRoutingPolicy, ModelPrice, ModelProviderMapping
from providers.envsubst import EnvReferenceError, substitute
from providers.models import Provider


def plan_mappings(
    plan: Plan,
    entries: list[Any],
    providers: dict[str, Provider],
    broken: set[str],
    check: Checker,
) -> None:
    existing = {
        (m.model_alias, m.provider_id, m.provider_model_id): m
        for m in ModelProviderMapping.objects.select_related("provider")
    }
    now = timezone.now()
    seen: dict[tuple[str, str, str], str] = {}
    listed: set[int] = set()
    for i, entry in enumerate(entries):
        label = entry_label(i, "mappings", entry, "alias")
        values = parse_entry(entry, MAPPING_FIELDS, label, check.errors)
        if values is None:
            continue
        provider_name = values["provider"]
        provider = providers.get(provider_name)
        if provider is None:
            if provider_name not in broken:
                check.errors.append(f"{label}: unknown provider {provider_name!r}")
            continue
        ident = (values["alias"], provider_name, values["model"])
        if ident in seen:
            check.errors.append(
                f"{label}: duplicate of {seen[ident]} (same alias, provider, model)"
            )
            continue
        seen[ident] = f"mappings[{i}]"
        found = existing.get((values["alias"], provider.pk, values["model"]))
        obj = found or ModelProviderMapping()
        text = f"{values['alias']} -> {provider_name}:{values['model']}"
        item = MappingItem(obj=obj, label=text, is_new=found is None)
        if found is not None:
            listed.add(found.pk)
        before = snapshot(obj, MAPPING_FIELDS)
        apply_values(obj, MAPPING_FIELDS, values)
        obj.provider = provider
        check.clean(
            obj, label, MAPPING_FIELDS, exclude={"provider"} if provider.pk is None else None
        )
        diff_into(item, before, MAPPING_FIELDS)
        item.price = _plan_price(item, values, label, now, check)
        plan.mappings.append(item)
    plan.left.extend(
        ("mapping", f"{m.model_alias} -> {m.provider.name}:{m.provider_model_id}")
        for m in existing.values()
        if m.pk not in listed
    )


def _plan_price(
    mapping: MappingItem, values: dict[str, Any], label: str, now: datetime, check: Checker
) -> Item[ModelPrice] | None:
    """A new price row when the file's price differs from the one in effect (history stays)."""
    given = {
        f.attr: values[f.path] for f in MAPPING_FIELDS if f.attr in PRICE_ATTRS and f.path in values
    }
    if not given:
        return None  # no price in the file: prices are left as they are
    missing = [a for a in ("input_per_million", "output_per_million") if a not in given]
    if missing:
        check.errors.extend(f"{label}.price.{a}: is required" for a in missing)
        return None
    price = ModelPrice(mapping=mapping.obj, effective_from=now, **given)
    current = None
    if not mapping.is_new:
        current = (
            ModelPrice.objects.filter(mapping=mapping.obj, effective_from__lte=now)
            .order_by("-effective_from", "-id")
            .first()
        )
    item: Item[ModelPrice] = Item(obj=price, label=mapping.label, is_new=current is None)
    if current is not None:
        for attr in PRICE_ATTRS:
            if getattr(current, attr) != getattr(price, attr):
                item.changed.append(attr)
                item.paths.append(file_path(MAPPING_FIELDS, attr))
    try:
        if mapping.is_new:
            # The model's clean() needs a saved target; the field checks still apply.
            price.clean_fields(exclude={"mapping"})
        else:
            price.full_clean()
    except ValidationError as exc:
        check.model_errors(exc, label, MAPPING_FIELDS)
    return item


def plan_virtual_keys(plan: Plan, entries: list[Any], check: Checker) -> None:
    existing = {v.name: v for v in VirtualKey.objects.all()}
    seen: dict[str, str] = {}
    hashes: dict[str, str] = {}
    aliases = {"key_hash": "key", "key_prefix": "key"}
    for i, entry in enumerate(entries):
        label = entry_label(i, "virtual_keys", entry, "name")
        values = parse_entry(entry, VIRTUAL_KEY_FIELDS, label, check.errors)
        if values is None:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                seen.setdefault(entry["name"], label)
            continue
        name = values["name"]
        if name in seen:
            check.errors.append(f"{label}.name: duplicate virtual key name (also {seen[name]})")
            continue
        seen[name] = label
        obj = existing.get(name) or VirtualKey()
        item = VirtualKeyItem(obj=obj, label=name, is_new=obj.pk is None)
        before = snapshot(obj, VIRTUAL_KEY_FIELDS)
        apply_values(obj, VIRTUAL_KEY_FIELDS, values)
        plaintext = _virtual_key_plaintext(item, values.get("key") or "", label, check)
        if plaintext:
            digest = hash_key(plaintext)
            if digest in hashes:
                check.errors.append(f"{label}.key: same key as {hashes[digest]}")
            hashes[digest] = label
            if item.is_new or digest != obj.key_hash:
                item.plaintext = plaintext
                obj.set_key(plaintext)
        elif item.is_new:
            # full_clean needs a key_hash; the real key is generated (and shown once) by
            # virtual_key_create when the plan is written, so this throwaway one is never saved.
            obj.set_key(generate_key())
        check.clean(obj, label, VIRTUAL_KEY_FIELDS, aliases=aliases)
        diff_into(item, before, VIRTUAL_KEY_FIELDS)
        if not item.is_new and item.plaintext:
            item.changed.append("key_hash")
            item.paths.append("key")
        plan.virtual_keys.append(item)
    plan.left.extend(("virtual_key", n) for n in existing if n not in seen)


def _virtual_key_plaintext(item: VirtualKeyItem, given: str, label: str, check: Checker) -> str:
    """The key the file asks for (``${VAR}`` resolved now), or "" to keep / generate one."""
    if given == REDACTED:
        if item.is_new:
            check.errors.append(f"{label}.key: {REDACTED_NEW}")
        return ""
    if not given:
        return ""
    try:
        plaintext = substitute(given, check.environ)
    except EnvReferenceError as exc:
        check.errors.append(f"{label}.key: {exc}")
        return ""
    if not plaintext.strip():
        check.errors.append(f"{label}.key: resolves to an empty key")
        return ""
    weakness = virtual_key_weakness(plaintext)
    if weakness:
        # Never echo the key: the label names the entry, the message says what is wrong.
        check.errors.append(f"{label}.key: too weak ({weakness})")
        return ""
    return plaintext


def plan_routing(plan: Plan, data: dict[str, Any], check: Checker) -> None:
    stored = RoutingSettings.objects.filter(pk=1).first()
    if data.get("routing") is None:
        if stored is not None:
            plan.left.append(("routing", "settings"))
        plan_alias_policies(plan, None, check)
        return
    raw = data["routing"]
    values = parse_entry(raw, ROUTING_FIELDS, "routing", check.errors, extra=("aliases",))
    if values is None:
        return
    plan_alias_policies(plan, raw.get("aliases"), check)
    obj = stored or RoutingSettings(pk=1)
    item: Item[RoutingSettings] = Item(obj=obj, label="settings", is_new=stored is None)
    before = snapshot(obj, ROUTING_FIELDS)
    apply_values(obj, ROUTING_FIELDS, values)
    check.clean(obj, "routing", ROUTING_FIELDS)
    diff_into(item, before, ROUTING_FIELDS)
    plan.routing = item


def plan_alias_policies(plan: Plan, aliases: Any, check: Checker) -> None:
    """``routing.aliases`` ({alias: strategy}): upsert by alias; rows not in the file are left."""
    stored = {p.alias: p for p in AliasRoutingPolicy.objects.all()}
    given: dict[str, Any] = {}
    if aliases is not None:
        if not isinstance(aliases, dict):
            check.errors.append("routing.aliases: must be a mapping of alias to strategy")
            return
        given = aliases
    for alias, strategy in given.items():
        label = f"routing.aliases.{alias}"
        if not isinstance(strategy, str):
            check.errors.append(f"{label}: must be a strategy name (a string)")
            continue
        existing = stored.get(str(alias))
        obj = existing or AliasRoutingPolicy(alias=str(alias))
        item: Item[AliasRoutingPolicy] = Item(obj=obj, label=str(alias), is_new=existing is None)
        before = snapshot(obj, ALIAS_POLICY_FIELDS)
        obj.strategy = strategy
        try:
            obj.full_clean(validate_unique=False)
        except ValidationError as exc:
            check.errors.extend(f"{label}: {m}" for m in exc.messages)
            continue
        diff_into(item, before, ALIAS_POLICY_FIELDS)
        plan.alias_policies.append(item)
    for alias in stored:
        if alias not in given:
            plan.left.append(("alias_routing", alias))
