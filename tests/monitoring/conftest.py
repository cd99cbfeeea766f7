"""Health-check and metrics fixtures: the fake upstream, the in-process gateway, clean state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers import circuit
from tests.fakes.upstream import fake_upstream, fake_upstream_server  # noqa: F401
from tests.proxy.conftest import gateway, install_table, usage_queue  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_circuits() -> Iterator[None]:
    """Circuit state is per process without Redis: every test starts with closed circuits."""
    circuit.local_state_clear()
    yield
    circuit.local_state_clear()
