"""Fuzz suite fixtures: hypothesis settings that keep CI deterministic, and the error-shape
checks every fuzz test applies to a 4xx.

Deterministic: ``derandomize=True`` draws the same examples on every run (no example database,
so a failure on one machine is a failure everywhere), ``max_examples`` keeps the suite to
seconds (``FUZZ_EXAMPLES`` raises it for a deeper local run), and ``print_blob`` plus
 hypothesis' own report print the falsifying example.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from hypothesis import HealthCheck, settings

from tests.fakes.upstream import fake_upstream, fake_upstream_server  # noqa: F401
from tests.fuzz.world import world  # noqa: F401
from tests.proxy.conftest import gateway, install_table, usage_queue  # noqa: F401

#: One settings object for the whole suite. Function-scoped fixtures are shared across the
#: examples on purpose: the world (instances, keys, the fake upstream) is read-only to them.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    # FUZZ_EXAMPLES=2000 for a deeper local run; CI keeps the default.
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def describe(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url.path} -> {response.status_code}: {response.text[:500]}"


def check_openai_answer(response: httpx.Response) -> None:
    """No 5xx from the gateway itself; a 4xx in OpenAI's error shape."""
    assert response.status_code < 500, describe(response)
    if response.status_code >= 400:
        body: Any = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict), describe(response)
        assert isinstance(error.get("message"), str) and error["message"], describe(response)
        assert isinstance(error.get("type"), str) and error["type"], describe(response)


def check_anthropic_answer(response: httpx.Response) -> None:
    """No 5xx from the gateway itself; a 4xx in Anthropic's error shape."""
    assert response.status_code < 500, describe(response)
    if response.status_code >= 400:
        body: Any = response.json()
        assert isinstance(body, dict) and body.get("type") == "error", describe(response)
        error = body.get("error")
        assert isinstance(error, dict), describe(response)
        assert isinstance(error.get("type"), str) and error["type"], describe(response)
        assert isinstance(error.get("message"), str) and error["message"], describe(response)
