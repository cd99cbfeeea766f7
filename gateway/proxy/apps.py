"""The OpenAI- and Anthropic-compatible proxy: the ``serve`` command (no models)."""

from __future__ import annotations

from django.apps import AppConfig


class ProxyConfig(AppConfig):
    name = "gateway.proxy"
    label = "proxy"
    verbose_name = "Proxy"
