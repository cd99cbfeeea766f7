"""Fixtures of the providers tests: the fake upstream (real HTTP on loopback) for probes."""

from __future__ import annotations

from tests.fakes.upstream import fake_upstream, fake_upstream_server  # noqa: F401
