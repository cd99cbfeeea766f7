"""``routing.aliases`` in configuration files: per-alias strategies (AliasRoutingPolicy)."""

from __future__ import annotations

import pytest

from gateway.config_io.errors import ConfigError
from gateway.config_io.exporter import config_export
from gateway.config_io.importer import config_import
from mappings.models import AliasRoutingPolicy

pytestmark = pytest.mark.django_db


def test_import_upserts_alias_strategies_and_export_round_trips() -> None:
    data = {
        "routing": {"strategy": "priority", "aliases": {"chat": "weighted", "cheap": "least_cost"}}
    }
    config_import(data=data)
    assert dict(AliasRoutingPolicy.objects.values_list("alias", "strategy")) == {
        "chat": "weighted",
        "cheap": "least_cost",
    }
    exported = config_export()
    assert exported["routing"]["aliases"] == {"chat": "weighted", "cheap": "least_cost"}
    report = config_import(data=exported)
    assert {r.action for r in report.results if r.kind == "alias_routing"} == {"unchanged"}
    data["routing"]["aliases"] = {"chat": "least_busy"}
    report = config_import(data=data)
    actions = {(r.label, r.action) for r in report.results if r.kind == "alias_routing"}
    assert actions == {("chat", "changed"), ("cheap", "left")}
    assert AliasRoutingPolicy.objects.get(alias="chat").strategy == "least_busy"


def test_unknown_strategy_names_the_alias() -> None:
    with pytest.raises(ConfigError) as info:
        config_import(data={"routing": {"aliases": {"chat": "fastest"}}})
    assert "routing.aliases.chat" in str(info.value)
    assert not AliasRoutingPolicy.objects.exists()
