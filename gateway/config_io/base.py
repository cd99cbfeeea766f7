"""Building blocks of an import plan: planned items, the error collector, field helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models

from gateway.config_io.report import Action
from gateway.config_io.schema import (
    PRICE_ATTRS,
    Field,
    file_path,
)
from gateway.config_io.tiers_plan import TiersPlan
from gateway.keys.models import RoutingSettings, VirtualKey
from mappings.models import AliasRoutingPolicy, ModelPrice, ModelProviderMapping
from providers.models import Provider, ProviderKeyCredential

M = TypeVar("M", bound=models.Model)

REDACTED_NEW = "secret redacted in export; provide the key"


@dataclass
class Item(Generic[M]):
    """One entity to write: the model instance (already cleaned) and what differs."""

    obj: M
    label: str
    is_new: bool
    changed: list[str] = field(default_factory=list)  # model attributes
    paths: list[str] = field(default_factory=list)  # the same, as file paths

    @property
    def action(self) -> Action:
        if self.is_new:
            return "created"
        return "changed" if self.changed else "unchanged"


@dataclass
class ProviderItem(Item[Provider]):
    keys: list[Item[ProviderKeyCredential]] = field(default_factory=list)


@dataclass
class MappingItem(Item[ModelProviderMapping]):
    # A new ModelPrice row; is_new: the mapping had no price; changed: the price differs.
    price: Item[ModelPrice] | None = None


@dataclass
class VirtualKeyItem(Item[VirtualKey]):
    # Key to set: from the file (new key or rotation). None on a new item: generate one.
    plaintext: str | None = field(default=None, repr=False)


@dataclass
class Plan:
    providers: list[ProviderItem] = field(default_factory=list)
    mappings: list[MappingItem] = field(default_factory=list)
    virtual_keys: list[VirtualKeyItem] = field(default_factory=list)
    routing: Item[RoutingSettings] | None = None
    alias_policies: list[Item[AliasRoutingPolicy]] = field(default_factory=list)
    tiers: TiersPlan | None = None  # the ``tiers`` section (None: not in the file)
    tiers_left: bool = False  # no ``tiers`` section, stored tier rules left alone
    left: list[tuple[str, str]] = field(default_factory=list)  # (kind, label)


class Checker:
    """Collects errors while the plan is built."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.errors: list[str] = []
        self.environ = environ

    def clean(
        self,
        obj: models.Model,
        label: str,
        fields: tuple[Field, ...],
        *,
        exclude: set[str] | None = None,
        aliases: dict[str, str] | None = None,
    ) -> None:
        """Run the model's ``full_clean()``; report its errors in file terms."""
        try:
            obj.full_clean(exclude=exclude)
        except ValidationError as exc:
            self.model_errors(exc, label, fields, aliases)

    def model_errors(
        self,
        exc: ValidationError,
        label: str,
        fields: tuple[Field, ...],
        aliases: dict[str, str] | None = None,
    ) -> None:
        if not hasattr(exc, "error_dict"):
            self.errors.extend(f"{label}: {m}" for m in exc.messages)
            return
        for name, messages in exc.message_dict.items():
            if name == NON_FIELD_ERRORS:
                where = label
            else:
                where = f"{label}.{(aliases or {}).get(name) or file_path(fields, name)}"
            self.errors.extend(f"{where}: {m}" for m in messages)


def apply_values(obj: models.Model, fields: tuple[Field, ...], values: dict[str, Any]) -> None:
    """Set every attribute of ``fields`` from ``values``, or to the model default if absent."""
    for f in fields:
        if not f.attr or f.attr in PRICE_ATTRS:
            continue
        if f.path in values:
            setattr(obj, f.attr, values[f.path])
        else:
            model_field = obj._meta.get_field(f.attr)
            assert isinstance(model_field, models.Field)
            setattr(obj, f.attr, model_field.get_default())


def snapshot(obj: models.Model, fields: tuple[Field, ...]) -> dict[str, Any]:
    """The values ``fields`` manage, before the file's values are applied."""
    return {f.attr: getattr(obj, f.attr) for f in fields if f.attr and f.attr not in PRICE_ATTRS}


def diff_into(item: Item[Any], before: dict[str, Any], fields: tuple[Field, ...]) -> None:
    """Record on ``item`` which attributes the file changed (values compared after cleaning)."""
    if item.is_new:
        return
    for attr, old in before.items():
        if getattr(item.obj, attr) != old:
            item.changed.append(attr)
            item.paths.append(file_path(fields, attr))
