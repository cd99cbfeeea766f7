"""Routing tests run requests through the in-process gateway against the fake upstream."""

from __future__ import annotations

from tests.fakes.upstream import fake_upstream, fake_upstream_server  # noqa: F401
from tests.proxy.conftest import gateway, install_table, usage_queue  # noqa: F401
