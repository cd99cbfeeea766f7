"""Fixtures for configuration import/export tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.config_io.seed import ENV, SEED


@pytest.fixture
def seed_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment the seed configuration refers to."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return dict(ENV)


@pytest.fixture
def seed() -> dict[str, Any]:
    """A fresh deep copy of the seed configuration, safe to edit in a test."""
    return copy.deepcopy(SEED)
