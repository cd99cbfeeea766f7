"""Configuration as code: import and export providers, keys, mappings, virtual keys, routing.

The file format is defined in ``gateway/config_io/schema.py`` (``gateway/fixtures/demo.yaml``
is a working example). ``config_import`` and ``config_export`` are the service and selector;
the ``gateway_config`` management command and (later) the admin REST API are thin callers.
"""

from __future__ import annotations

from gateway.config_io.errors import ConfigError
from gateway.config_io.exporter import config_export, redact_secret
from gateway.config_io.fileformat import config_parse, config_render
from gateway.config_io.importer import config_import
from gateway.config_io.report import EntityResult, ImportReport
from gateway.config_io.schema import REDACTED

__all__ = [
    "REDACTED",
    "ConfigError",
    "EntityResult",
    "ImportReport",
    "config_export",
    "config_import",
    "config_parse",
    "config_render",
    "redact_secret",
]
