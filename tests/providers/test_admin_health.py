"""Health in the Provider admin: columns in one query, the form's health fields, "Check now",
"Probe selected", and the read-only HealthCheck history admin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from providers import circuit
from providers.circuit import CircuitState, circuit_record_probe_sync
from providers.models import HealthCheck, Provider
from tests.admin_helpers import admin_url
from tests.factories import make_key, make_provider, make_provider_row
from tests.fakes.upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_circuits() -> Iterator[None]:
    """Circuit state is per process without Redis: every test starts with closed circuits."""
    circuit.local_state_clear()
    yield
    circuit.local_state_clear()


def check(provider: Provider, status: str, *, ago: int = 0, **fields: object) -> HealthCheck:
    return HealthCheck.objects.create(
        provider=provider,
        status=status,
        probe="models",
        checked_at=timezone.now() - timedelta(seconds=ago),
        **fields,
    )


def changelist_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(admin_url(Provider, "changelist"))
        assert response.status_code == 200
    return len(ctx.captured_queries)


def test_changelist_shows_latest_status_circuit_and_probe_time(admin_client: Client) -> None:
    down = make_provider_row(name="flaky")
    check(down, "healthy", ago=120)
    latest = check(down, "down", ago=5, error_category="connect")
    for _ in range(5):
        circuit_record_probe_sync(down.pk, ok=False, failure_threshold=5, recovery_timeout=60)
    make_provider_row(name="fresh")

    response = admin_client.get(admin_url(Provider, "changelist"))
    rows = {r.name: r for r in response.context["cl"].result_list}
    assert rows["flaky"]._health_status == "down"  # the latest check, not the older one
    assert rows["flaky"]._circuit.state == CircuitState.OPEN
    assert rows["fresh"]._health_status is None
    html = response.content.decode()
    assert ">down</span>" in html and ">open (5 failures)</span>" in html
    assert latest.checked_at.strftime("%Y-%m-%d %H:%M:%S UTC") in html
    assert "last probe (utc)" in html.lower()
    assert "not probed yet" in html


def test_changelist_health_adds_no_query_per_row(admin_client: Client) -> None:
    for _ in range(2):
        provider = make_provider_row()
        make_key(provider)
        check(provider, "healthy")
    few = changelist_queries(admin_client)
    for _ in range(8):
        provider = make_provider_row()
        make_key(provider)
        check(provider, "down", ago=30)
        check(provider, "healthy")
    assert changelist_queries(admin_client) == few


def test_change_form_shows_health_and_redacted_last_error(admin_client: Client) -> None:
    provider = make_provider_row(name="leaky")
    key = make_key(provider)
    # A message stored before a redaction rule knew of this key: the page redacts it again.
    check(
        provider,
        "down",
        http_status=401,
        error_category="auth",
        error_message=f"invalid key {key.api_key}",
    )
    html = admin_client.get(admin_url(Provider, "change", provider.pk)).content.decode()
    assert "Health now" in html
    assert ">down</span>" in html and ">closed</span>" in html
    assert "Authentication refused: invalid key [redacted]" in html
    assert key.api_key not in html
    assert 'id="check-now"' in html


def test_check_now_probes_and_shows_the_result(
    admin_client: Client, fake_upstream: FakeUpstream
) -> None:
    inst = make_provider("checked", "openai", upstream_url=fake_upstream.url)
    check(inst.provider, "healthy", ago=600)
    fake_upstream.behave(Behaviour.fail(500, "upstream exploded"), key=inst.api_key)

    url = admin_url(Provider, "check", inst.id)
    response = admin_client.post(url, follow=True)

    assert response.redirect_chain == [(admin_url(Provider, "change", inst.id), 302)]
    [message] = [str(m) for m in get_messages(response.wsgi_request)] or [
        str(m) for m in response.context["messages"]
    ]
    assert message.startswith("Checked now: “checked”: down") and "HTTP 500" in message
    assert "upstream exploded" in message
    html = response.content.decode()
    assert ">down</span>" in html  # the form's status is the new probe's
    assert "Server error (5xx): upstream exploded" in html
    assert HealthCheck.objects.filter(provider=inst.provider).count() == 2
    assert [r.method for r in fake_upstream.requests()] == ["GET"]


def test_check_now_needs_post_and_change_permission(
    admin_client: Client, client: Client, django_user_model: type
) -> None:
    provider = make_provider_row()
    url = admin_url(Provider, "check", provider.pk)
    assert admin_client.get(url).status_code == 302  # a GET probes nothing
    assert not HealthCheck.objects.exists()
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    client.force_login(viewer)
    assert client.post(url).status_code == 403  # no change permission: refused
    assert not HealthCheck.objects.exists()


def test_probe_selected_action_reports_each_instance(
    admin_client: Client, fake_upstream: FakeUpstream
) -> None:
    ok = make_provider("ok-one", "openai", upstream_url=fake_upstream.url)
    bad = make_provider("bad-one", "openai", upstream_url=fake_upstream.url)
    off = make_provider("off-one", "openai", upstream_url=fake_upstream.url, is_enabled=False)
    fake_upstream.behave(Behaviour.fail(503, "overloaded"), key=bad.api_key)

    response = admin_client.post(
        admin_url(Provider, "changelist"),
        {"action": "probe_selected", "_selected_action": [ok.id, bad.id, off.id]},
        follow=True,
    )
    texts = [str(m) for m in response.context["messages"]]
    assert texts[0].startswith("“bad-one”: down") and "overloaded" in texts[0]
    assert texts[1] == "“off-one” is disabled: not probed."
    assert texts[2].startswith("“ok-one”: healthy") and "circuit closed" in texts[2]
    rows = {r.name: r for r in response.context["cl"].result_list}
    assert (rows["bad-one"]._health_status, rows["ok-one"]._health_status) == ("down", "healthy")


def test_healthcheck_admin_is_read_only_with_filters(admin_client: Client) -> None:
    provider = make_provider_row(name="hist")
    row = check(provider, "down", error_category="timeout", error_message="timed out")
    check(make_provider_row(name="other"), "healthy")

    response = admin_client.get(admin_url(HealthCheck, "changelist"), {"status": "down"})
    assert [r.pk for r in response.context["cl"].result_list] == [row.pk]
    html = response.content.decode()
    assert "checked at (utc)" in html.lower()
    assert 'class="toplinks"' in html  # the date hierarchy
    filters = [spec.title for spec in response.context["cl"].filter_specs]
    assert filters == ["provider", "status", "checked at"]

    response = admin_client.get(admin_url(HealthCheck, "changelist"), {"provider__id__exact": 0})
    assert response.context["cl"].result_count == 0
    assert admin_client.get(admin_url(HealthCheck, "add")).status_code == 403
    change = admin_url(HealthCheck, "change", row.pk)
    assert admin_client.post(change, {"status": "healthy"}).status_code == 403
    assert admin_client.post(admin_url(HealthCheck, "delete", row.pk)).status_code == 403
    row.refresh_from_db()
    assert row.status == "down"
