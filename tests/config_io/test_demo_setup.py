"""``demo_setup``: idempotent demo configuration, a working demo key, a usable admin login."""

from __future__ import annotations

import re
import stat
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client

from gateway.keys.models import VirtualKey, hash_key
from gateway.usage.models import UsageRecord
from mappings.models import ModelPrice, ModelProviderMapping
from providers.config_version import config_version_db
from providers.models import Provider, ProviderKeyCredential

pytestmark = pytest.mark.django_db


@pytest.fixture
def state_dir(tmp_path: Path, settings) -> Path:  # type: ignore[no-untyped-def]
    settings.STATE_DIR = tmp_path / "state"
    return settings.STATE_DIR


def _run() -> str:
    out = StringIO()
    call_command("demo_setup", stdout=out)
    return out.getvalue()


def _printed(output: str, label: str) -> str:
    match = re.search(rf"{label}:\s+(\S+)", output)
    assert match, output
    return match.group(1)


def _counts() -> tuple[int, ...]:
    return (
        Provider.objects.count(),
        ProviderKeyCredential.objects.count(),
        ModelProviderMapping.objects.count(),
        ModelPrice.objects.count(),
        VirtualKey.objects.count(),
        get_user_model().objects.count(),
    )


def test_demo_setup_twice_creates_once_and_prints_the_same(state_dir: Path) -> None:
    first = _run()
    counts, version = _counts(), config_version_db()
    second = _run()

    assert _counts() == counts == (2, 3, 4, 4, 1, 1)
    assert config_version_db() == version
    key = _printed(first, "Virtual key")
    assert key.startswith("sk-gw-")
    assert _printed(second, "Virtual key") == key
    assert _printed(second, "Password") == _printed(first, "Password")
    assert "Demo configuration imported" in first
    assert "Demo configuration imported" not in second
    assert "http://127.0.0.1:8000/v1/chat/completions" in second
    assert f"Authorization: Bearer {key}" in second
    assert '"model": "demo-chat"' in second


def test_demo_configuration(state_dir: Path) -> None:
    _run()
    chat = ModelProviderMapping.objects.filter(model_alias="demo-chat").order_by("priority")
    assert [(m.provider.name, m.priority) for m in chat] == [
        ("mock-primary", 1),
        ("mock-secondary", 2),
    ]
    assert ModelProviderMapping.objects.get(model_alias="gpt-4o-mini").provider.name == (
        "mock-primary"
    )
    embed = ModelProviderMapping.objects.get(model_alias="demo-embed")
    assert embed.supports_embeddings and not embed.supports_chat
    headers = {p.name: p.custom_headers for p in Provider.objects.all()}
    assert headers["mock-primary"]["X-Demo-Instance"] == "primary"
    assert headers["mock-secondary"]["X-Demo-Instance"] == "secondary"
    assert set(Provider.objects.values_list("provider_type", flat=True)) == {"mock"}
    assert not ModelProviderMapping.objects.filter(prices__isnull=True).exists()


def test_demo_key_authenticates_and_admin_can_log_in(state_dir: Path, client: Client) -> None:
    output = _run()
    key = _printed(output, "Virtual key")
    password = _printed(output, "Password")

    vkey = VirtualKey.objects.get(key_hash=hash_key(key))
    assert vkey.name == "demo" and vkey.is_enabled and vkey.allowed_models == []
    assert client.login(request=HttpRequest(), username="admin", password=password)
    assert client.get("/admin/").status_code == 200

    for name in ("demo_key", "demo_admin_password"):
        mode = stat.S_IMODE((state_dir / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert (state_dir / "demo_key").read_text().strip() == key


def test_kept_key_survives_a_database_reset(state_dir: Path) -> None:
    key = _printed(_run(), "Virtual key")
    UsageRecord.objects.all().delete()  # demo_setup also seeds sample usage for the reports
    VirtualKey.objects.all().delete()

    again = _printed(_run(), "Virtual key")

    assert again == key
    assert VirtualKey.objects.get(name="demo").key_hash == hash_key(key)


def test_lost_key_file_gives_a_new_working_key(state_dir: Path) -> None:
    key = _printed(_run(), "Virtual key")
    (state_dir / "demo_key").unlink()

    new = _printed(_run(), "Virtual key")

    assert new != key
    assert VirtualKey.objects.get(name="demo").key_hash == hash_key(new)
    assert _printed(_run(), "Virtual key") == new


def test_existing_admin_password_is_not_overwritten(state_dir: Path, client: Client) -> None:
    get_user_model().objects.create_superuser(username="admin", email="", password="mine-1234")

    output = _run()

    assert "unchanged: this user existed before demo_setup" in output
    assert client.login(request=HttpRequest(), username="admin", password="mine-1234")
