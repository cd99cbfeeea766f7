"""Admin login throttling (django-axes): lockout per username and IP address."""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db

PASSWORD = "right-horse-battery-staple"


@pytest.fixture(autouse=True)
def fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("ops", password=PASSWORD, is_staff=True)


def login(client: Client, password: str, *, username: str = "ops", ip: str = "10.0.0.1") -> int:
    """Post the admin login form; the status (302 on success, 200 form again, 429 locked)."""
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=ip,
    )
    return response.status_code


def fail(client: Client, times: int, **kw: str) -> None:
    """``times`` failed logins; the last one reaching the limit is answered 429."""
    for _ in range(times - 1):
        assert login(client, "wrong", **kw) == 200
    assert login(client, "wrong", **kw) == (429 if times >= 5 else 200)


def test_a_username_and_ip_is_locked_out_after_the_limit(staff: User) -> None:
    client = Client()
    fail(client, 5)
    # The right password no longer helps from this address.
    assert login(client, PASSWORD) == 429
    assert "_auth_user_id" not in client.session


def test_the_same_user_from_another_address_and_another_user_still_log_in(staff: User) -> None:
    User.objects.create_user("other", password=PASSWORD, is_staff=True)
    fail(Client(), 5)
    assert login(Client(), PASSWORD, ip="10.0.0.2") == 302
    assert login(Client(), PASSWORD, username="other") == 302


def test_a_success_before_the_limit_resets_the_count(staff: User) -> None:
    client = Client()
    fail(client, 4)
    assert login(client, PASSWORD) == 302
    fail(Client(), 4)
    assert login(Client(), PASSWORD) == 302


@override_settings(AXES_FAILURE_LIMIT=2)
def test_the_limit_is_configurable(staff: User) -> None:
    assert login(Client(), "wrong") == 200
    assert login(Client(), "wrong") == 429
    assert login(Client(), PASSWORD) == 429


@override_settings(AXES_HANDLER="axes.handlers.cache.AxesCacheHandler")
def test_the_cache_store_locks_out_too(staff: User) -> None:
    """The cache is Redis when REDIS_URL is set (shared by every process), else per process.
    A fresh address per run: the Redis store outlives the test."""
    ip = "10.{}.{}.{}".format(*secrets.token_bytes(3))
    fail(Client(), 5, ip=ip)
    assert login(Client(), PASSWORD, ip=ip) == 429
    assert login(Client(), PASSWORD) == 302  # another address


def test_the_cache_store_is_redis_when_configured() -> None:
    # From the environment: tests that do not ask for Redis blank the REDIS_URL setting.
    backend = django_settings.CACHES["axes"]["BACKEND"]
    expected = "redis.RedisCache" if os.environ.get("REDIS_URL") else "locmem.LocMemCache"
    assert backend.endswith(expected)
