"""The provider health page: stale probes flagged with the reason, the last error text, an
auto-refresh toggle and a 7-day view; the health API carries the same fields."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from providers.models import HealthCheck
from tests.factories import make_provider_row
from tests.reports.helpers import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    # The report API read below needs the health checks' view permission.
    client.force_login(make_user(staff=True, perms=["providers.view_healthcheck"]))
    return client


def test_health_page_flags_stale_probes_with_the_error_and_has_a_7_day_view(
    staff_client: Client,
) -> None:
    now = timezone.now()
    stale = make_provider_row(name="stale-one", health_check_interval=60)
    fresh = make_provider_row(name="fresh-one", health_check_interval=600)
    HealthCheck.objects.create(provider=stale, status="down", probe="models",
                               error_message="HTTP 401: bad key [redacted]",
                               checked_at=now - timedelta(minutes=33))  # fmt: skip
    HealthCheck.objects.create(provider=fresh, status="healthy", probe="models", latency_ms=90,
                               checked_at=now - timedelta(minutes=5))  # fmt: skip
    HealthCheck.objects.create(provider=fresh, status="down", probe="models",
                               checked_at=now - timedelta(days=3))  # fmt: skip
    html = staff_client.get(reverse("ops-health")).content.decode()
    assert f'id="provider-{stale.pk}" data-status="down" data-stale="yes"' in html
    assert f'id="provider-{fresh.pk}" data-status="healthy" data-stale="no"' in html
    assert "celery beat not running?" in html and 'id="stale-warning"' in html
    assert "HTTP 401: bad key [redacted]" in html
    assert 'id="auto-refresh"' in html
    day = staff_client.get(reverse("ops-health")).context["rows"]
    week = staff_client.get(reverse("ops-health"), {"window": "7d"}).context["rows"]
    counts = {r.name: (r.checks_24h, r.uptime_24h) for r in day}
    assert counts["fresh-one"] == (1, 1.0)
    assert {r.name: (r.checks_24h, r.uptime_24h) for r in week}["fresh-one"] == (2, 0.5)
    bad = staff_client.get(reverse("ops-health"), {"window": "1y"}, follow=True)
    assert bad.status_code == 200 and "Unknown window" in bad.content.decode()
    api = staff_client.get("/api/reports/health/").json()
    assert {r["name"]: r["stale"] for r in api} == {"stale-one": True, "fresh-one": False}
