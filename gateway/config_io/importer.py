"""Configuration import: validate the whole file, then write it in one transaction."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from django.db import models, transaction

from gateway.config_io.base import Item, Plan
from gateway.config_io.plan import plan_build
from gateway.config_io.report import ImportReport
from gateway.config_io.tiers_plan import write_tiers
from gateway.keys.services import virtual_key_create
from providers.history import history_import_user, history_log
from providers.services import provider_save

VIA = "configuration import"


class _DryRunRollback(Exception):
    """Raised inside the transaction to undo a dry run's writes."""


def config_import(
    *,
    data: dict[str, Any],
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
    actor: Any = None,
) -> ImportReport:
    """Import a parsed configuration file (upsert by name); return what was done.

    Everything is validated before the first write; an invalid file raises
    :class:`~gateway.config_io.errors.ConfigError` listing every problem and writes nothing.
    All writes share one transaction. Rows whose values already equal the file's are not
    saved at all, so a repeated import leaves ``updated_at`` and the config version alone.
    ``dry_run`` performs the same writes and rolls them back. ``environ`` (default
    ``os.environ``) is where ``${VAR}`` references must be set. Each row written gets an
    admin History entry by ``actor`` (default: the ``config-import`` user).
    """
    env = os.environ if environ is None else environ
    report = ImportReport(dry_run=dry_run)
    try:
        # Validation reads inside the transaction too, so the plan cannot go stale between
        # checking and writing (SQLite takes the write lock at BEGIN IMMEDIATE).
        with transaction.atomic():
            plan = plan_build(data=data, environ=env)
            _write(plan, report, env)
            if not dry_run:
                _history(plan, actor)
            if dry_run:
                raise _DryRunRollback
    except _DryRunRollback:
        pass
    return report


def _save(item: Item[Any]) -> None:
    """Insert a new row, update only the changed columns of a changed one, else nothing."""
    if item.is_new:
        item.obj.save()
    elif item.changed:
        fields = list(item.changed)
        if _has_field(item.obj, "updated_at"):
            fields.append("updated_at")
        item.obj.save(update_fields=fields)


def _history(plan: Plan, actor: Any) -> None:
    """One History entry per row the import added or changed (unchanged rows: none)."""
    items: list[Item[Any]] = []
    for provider in plan.providers:
        items += [provider, *provider.keys]
    for mapping in plan.mappings:
        items += [mapping] + ([mapping.price] if mapping.price is not None else [])
    items += plan.virtual_keys
    items += [plan.routing] if plan.routing is not None else []
    items += plan.alias_policies
    written = [i for i in items if i.is_new or i.changed]
    if not written:
        return
    user = actor if actor is not None else history_import_user()
    for item in written:
        obj = item.obj
        if obj.pk is None and hasattr(obj, "name"):  # a virtual key made by the service
            obj = type(obj)._default_manager.filter(name=obj.name).first() or obj
        if item.is_new:
            history_log(user=user, obj=obj, action="added", via=VIA)
        else:
            history_log(user=user, obj=obj, action="changed", via=VIA, fields=item.changed)


def _has_field(obj: models.Model, name: str) -> bool:
    return any(f.name == name for f in obj._meta.get_fields())


def _write(plan: Plan, report: ImportReport, env: Mapping[str, str]) -> None:
    for provider in plan.providers:
        # The plan checked the same things; the service writes only what changed.
        provider_save(provider=provider.obj, keys=[k.obj for k in provider.keys], environ=env)
        report.add("provider", provider.label, provider.action, provider.paths)
        for key in provider.keys:
            report.add("key", key.label, key.action, key.paths)
    for mapping in plan.mappings:
        _save(mapping)
        report.add("mapping", mapping.label, mapping.action, mapping.paths)
        price = mapping.price
        if price is None:
            continue
        if price.is_new or price.changed:
            # Never edit a price in effect: the new one starts now, the old stays as history.
            price.obj.mapping = mapping.obj
            price.obj.save()
        report.add("price", price.label, price.action, price.paths)
    for vkey in plan.virtual_keys:
        result = report.add("virtual_key", vkey.label, vkey.action, vkey.paths)
        if vkey.is_new:
            obj = vkey.obj
            _, plaintext = virtual_key_create(
                name=obj.name,
                key=vkey.plaintext,
                allowed_models=obj.allowed_models,
                expires_at=obj.expires_at,
                is_enabled=obj.is_enabled,
                requests_per_minute=obj.requests_per_minute,
                tokens_per_minute=obj.tokens_per_minute,
                budget_amount=obj.budget_amount,
                budget_period=obj.budget_period,
                budget_alert_threshold=obj.budget_alert_threshold,
            )
            if vkey.plaintext is None:
                # Generated here: the report is the only place it will ever appear. A dry run
                # rolls it back, so showing it would hand out a key that does not exist.
                if report.dry_run:
                    result.fields = ["a key would be generated"]
                else:
                    result.new_key = plaintext
                    result.fields = ["key generated"]
        else:
            if "key_hash" in vkey.changed:
                vkey.changed.append("key_prefix")
            _save(vkey)
    if plan.routing is not None:
        _save(plan.routing)
        report.add("routing", plan.routing.label, plan.routing.action, plan.routing.paths)
    for policy in plan.alias_policies:
        _save(policy)
        report.add("alias_routing", policy.label, policy.action, policy.paths)
    write_tiers(plan.tiers, plan.tiers_left, report)
    for kind, label in plan.left:
        report.add(kind, label, "left")
