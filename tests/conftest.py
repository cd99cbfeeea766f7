"""Shared fixtures.

Services: tests that need PostgreSQL or Redis use ``require_redis`` / ``require_postgres``.
In a bare ``make test`` they skip with a visible reason; under CI (``CI_REQUIRE_SERVICES=1``)
a missing service fails the test instead, so CI runs everything.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import NoReturn

import pytest
from django.conf import settings

from providers import db_thread, secrets
from providers.redis_conn import reset_clients

# Session-wide real Redis Cluster and Sentinel (tests/redis_topologies/fixtures.py): defined
# here, once, so every directory shares the one set of processes on its fixed ports.
from tests.redis_topologies.fixtures import redis_cluster, redis_sentinel  # noqa: F401

REQUIRE_SERVICES = os.environ.get("CI_REQUIRE_SERVICES") == "1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing_service(reason: str) -> NoReturn:
    """Skip (plain machine) or fail (CI) for a service the test needs."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing under CI: {reason}")
    pytest.skip(f"missing service: {reason}")


@pytest.fixture
def require_postgres() -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing_service("PostgreSQL (set DATABASE_URL=postgres://...)")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis, flushed before and after the test. Skips without REDIS_URL."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        missing_service("Redis (set REDIS_URL=redis://...)")
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service(f"Redis at {url} does not answer: {exc}")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def with_redis(redis_url: str, settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Run the test with the gateway configured for Redis."""
    settings.REDIS_URL = redis_url
    reset_clients()
    yield redis_url
    reset_clients()


@pytest.fixture(autouse=True)
def _no_redis_by_default(request, settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Tests run without Redis unless they ask for ``with_redis``: each test states its world."""
    from gateway.celery import app as celery_app

    eager = celery_app.conf.task_always_eager
    if "with_redis" not in request.fixturenames:
        settings.REDIS_URL = ""
        # No broker in this world either: Celery runs tasks in process, as in `make demo`
        # (the app's configuration was read once, from the environment, at startup).
        settings.CELERY_TASK_ALWAYS_EAGER = True
        celery_app.conf.task_always_eager = True
    reset_clients()
    yield
    celery_app.conf.task_always_eager = eager
    reset_clients()


@pytest.fixture(autouse=True)
def _fresh_cipher() -> Iterator[None]:
    secrets.reset_cipher()
    yield
    secrets.reset_cipher()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:  # pytest-django's, extended
    """Close the gateway's database thread's connection before the test database is dropped
    (PostgreSQL refuses to drop a database that still has sessions)."""
    yield
    db_thread.close_connections()
