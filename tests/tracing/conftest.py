"""Tracing tests run requests through the in-process gateway against the fake upstream, with
spans kept in memory (the SDK's own ``InMemorySpanExporter``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.proxy import tracing
from tests.fakes.upstream import fake_upstream, fake_upstream_server  # noqa: F401
from tests.proxy.conftest import gateway, install_table, usage_queue  # noqa: F401


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, every span kept in memory as it ends."""
    exporter = InMemorySpanExporter()
    tracing.tracing_setup(exporter, env={}, batch=False)
    yield exporter
    tracing.tracing_shutdown()


@pytest.fixture
def tracing_off() -> None:
    tracing.tracing_shutdown()
    assert not tracing.ON
