"""Reading and writing configuration files (YAML or JSON)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from gateway.config_io.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """``safe_load`` that rejects duplicate keys.

    Plain PyYAML keeps the last of two ``timeout:`` lines silently; in a configuration file
    that is almost always a mistake worth reporting.
    """


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def config_parse(*, text: str, filename: str = "") -> dict[str, Any]:
    """Parse ``text`` as JSON (``.json`` or content starting with ``{``) or else YAML."""
    name = filename.lower()
    as_json = name.endswith(".json") or (
        not name.endswith((".yaml", ".yml")) and text.lstrip().startswith("{")
    )
    try:
        data = json.loads(text) if as_json else yaml.load(text, Loader=_StrictLoader)  # noqa: S506
    except json.JSONDecodeError as exc:
        raise ConfigError([f"not valid JSON: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(["the file must hold a mapping with providers, mappings, ..."])
    return data


def config_render(*, data: dict[str, Any], fmt: str = "yaml") -> str:
    """Serialise an exported configuration as ``yaml`` or ``json``."""
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
