"""A provider key that no configured Fernet key decrypts: only that key is unusable.

The rest of the route table builds, the instance fails over to its other keys, and the key
shows as "cannot decrypt" in the admin's key inline and on the ops health page.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test import Client

from gateway.routing.table import route_table_build
from providers.models import ProviderKeyCredential
from providers.secrets import InvalidToken, Undecryptable, tolerant_decryption
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db


def _orphan(key: ProviderKeyCredential) -> None:
    """Store a token made with an encryption key the gateway no longer has."""
    token = Fernet(Fernet.generate_key()).encrypt(b"sk-lost-key").decode()
    table = ProviderKeyCredential._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET api_key = %s WHERE id = %s", [token, key.pk])


@pytest.fixture
def instance(fake_upstream: FakeUpstream) -> Any:
    inst = make_provider(
        "two-keys",
        "openai",
        upstream_url=fake_upstream.url,
        keys=[{"name": "lost", "primary": True}, {"name": "spare"}],
    )
    make_mapping("chat", inst, "fake-gpt")
    _orphan(inst.keys["lost"])
    return inst


def test_table_builds_without_the_undecryptable_key(instance: Any) -> None:
    with pytest.raises(InvalidToken):  # reading it plainly still refuses
        ProviderKeyCredential.objects.get(pk=instance.keys["lost"].pk)
    table = route_table_build()
    snap = table.providers[instance.id]
    assert [k.name for k in snap.keys] == ["spare"]
    assert snap.undecryptable_keys == ("lost",)
    assert not snap.error and [c.provider.id for c in table.candidates("chat")] == [instance.id]


def test_requests_fail_over_to_the_other_key(
    instance: Any,
    install_table: Any,
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    key = make_vkey("app").plaintext
    install_table()
    response = gateway.run(
        lambda c: c.post(
            "/v1/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"},
        )
    )
    assert response.status_code == 200, response.text
    assert fake_upstream.requests()[-1].api_key == instance.api_keys["spare"]


def test_admin_inline_and_ops_health_show_cannot_decrypt(
    instance: Any, admin_client: Client
) -> None:
    page = admin_client.get(f"/admin/providers/provider/{instance.id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cannot decrypt" in html and "sk-lost-key" not in html
    ops = admin_client.get("/ops/health/")
    assert ops.status_code == 200
    assert "key lost: cannot decrypt" in ops.content.decode()


def test_saving_the_instance_keeps_the_stored_token(instance: Any, admin_client: Client) -> None:
    """Changing another key on the page writes the undecryptable token back unchanged."""
    table = ProviderKeyCredential._meta.db_table

    def raw() -> str:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT api_key FROM {table} WHERE id = %s",
                [instance.keys["lost"].pk],
            )
            return str(cursor.fetchone()[0])

    before = raw()
    with tolerant_decryption():
        row = ProviderKeyCredential.objects.get(pk=instance.keys["lost"].pk)
    assert isinstance(row.api_key, Undecryptable)
    row.organization = "org-x"
    row.save()
    assert raw() == before


def test_admin_api_lists_the_instance_and_marks_the_key(
    instance: Any, admin_client: Client
) -> None:
    """The admin API reads like the admin page: the bad key is marked, nothing else is lost."""
    listing = admin_client.get("/api/providers/")
    assert listing.status_code == 200, listing.content
    detail = admin_client.get(f"/api/providers/{instance.id}/")
    assert detail.status_code == 200, detail.content
    keys = {k["key_name"]: k["masked_key"] for k in detail.json()["keys"]}
    assert keys["lost"] == "(cannot decrypt)"
    assert keys["spare"].startswith("…")
    assert "sk-lost-key" not in detail.content.decode()
    rows = admin_client.get(f"/api/provider-keys/?provider={instance.id}")
    assert rows.status_code == 200, rows.content
    assert {r["key_name"]: r["masked_key"] for r in rows.json()["results"]}["lost"] == (
        "(cannot decrypt)"
    )
