"""Migration from other gateways' configuration files (``gateway_config import --from``).

A converter turns a foreign file into a configuration in our format plus the list of what it
could not carry over; the result is imported with ``config_import`` like any file of ours, so
validation, ``${VAR}`` checks and idempotence are the same. Converters are loaded lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

from gateway.config_io.migrate.base import Migration

# --from name -> module with ``convert(source: dict) -> Migration``.
FORMATS = {
    "claude-code-proxy": "gateway.config_io.migrate.claude_code_proxy",
    "mattermost": "gateway.config_io.migrate.mattermost",
    "litellm": "gateway.config_io.migrate.litellm",
}


def config_migrate(*, fmt: str, source: dict[str, Any]) -> Migration:
    """Convert ``source`` (a parsed file in format ``fmt``) to our configuration format."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    module = importlib.import_module(FORMATS[fmt])
    result: Migration = module.convert(source)
    return result


__all__ = ["FORMATS", "Migration", "config_migrate"]
