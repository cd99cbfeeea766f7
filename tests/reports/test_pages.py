"""The cost report page, its CSV and the JSON endpoint agree; staff only; health page."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from gateway.reports.selectors import GROUPINGS, utc_today
from gateway.reports.services import rollups_update
from gateway.reports.templatetags.ops import usd
from providers.models import HealthCheck, Provider
from tests.reports.helpers import make_user, seed_usage, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    # The report API (read alongside the pages) needs the models' view permissions.
    client.force_login(
        make_user(staff=True, perms=["usage.view_usagerecord", "providers.view_healthcheck"])
    )
    return client


def _query(**extra: Any) -> dict[str, Any]:
    today = utc_today()
    return {"start": (today - timedelta(days=4)).isoformat(), "end": today.isoformat(), **extra}


def _page_rows(html: str) -> dict[str, list[str]]:
    """Cell texts of each report table row, by its data-key."""
    rows = {}
    for key, body in re.findall(r'<tr data-key="([^"]*)">(.*?)</tr>', html, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)
        rows[key] = [re.sub(r"<[^>]+>", " ", c).split() for c in cells]
    return {k: [" ".join(c) for c in v] for k, v in rows.items()}


@pytest.mark.parametrize("group_by", list(GROUPINGS))
def test_page_csv_and_json_show_the_same_numbers(staff_client: Client, group_by: str) -> None:
    world = seed_usage(days=5)
    rollups_update(days_back=4)
    query = _query(group_by=group_by, provider_id=world.providers[0].pk)
    page = staff_client.get(reverse("ops-costs"), query)
    assert page.status_code == 200
    html = page.content.decode()
    data = staff_client.get(reverse("api-report-costs"), query).json()
    exported = staff_client.get(reverse("ops-costs-csv"), query)
    assert exported["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert len(lines) == len(data["rows"]) + 1 and lines[-1]["key"] == "total"
    page_rows = _page_rows(html)
    assert list(page_rows) == [r["key"] for r in data["rows"]]
    for row, line in zip(data["rows"], lines, strict=False):
        assert line["key"] == row["key"]
        for column in ("requests", "errors", "prompt_tokens", "completion_tokens"):
            assert int(line[column]) == row[column]
        assert (line["cost"] or None) == row["cost"]
        assert int(line["unpriced_requests"]) == row["unpriced_requests"]
        cells = page_rows[row["key"]]
        assert cells[1] == f"{row['requests']:,}"
        assert cells[2] == f"{row['prompt_tokens']:,}"
        assert cells[3] == f"{row['completion_tokens']:,}"
        if row["cost"] is None:
            assert "unpriced" in cells[6]
        else:
            assert cells[6].startswith(usd(row["cost"]))
    assert lines[-1]["cost"] == data["total"]["cost"]
    assert f'id="total-cost">{usd(data["total"]["cost"])}<' in html


def test_json_by_token_and_schema_documented(api: APIClient) -> None:
    seed_usage(days=2)
    r = api.get(reverse("api-report-costs"), {"preset": "7d", "group_by": "virtual_key"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["group_by"] == "virtual_key" and len(body["days"]) == 7
    assert api.get(reverse("api-report-health")).status_code == 200
    bad = api.get(reverse("api-report-costs"), {"group_by": "nope"})
    assert bad.status_code == 400
    assert "group_by" in bad.json()["error"]["fields"]


def test_non_staff_cannot_see_reports(client: Client) -> None:
    for name in ("ops-costs", "ops-costs-csv", "ops-health"):
        r = client.get(reverse(name))
        assert r.status_code == 302 and "/admin/login/" in r["Location"], name
    client.force_login(make_user(staff=False))
    for name in ("ops-costs", "ops-costs-csv", "ops-health"):
        r = client.get(reverse(name))
        assert r.status_code == 302 and "/admin/login/" in r["Location"], name
    r = client.post(reverse("ops-health-check", args=[1]))
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    # The JSON endpoints: a non-staff session or token gets 403, nobody 401/403.
    assert client.get(reverse("api-report-costs")).status_code == 403
    assert token_client(staff=False).get(reverse("api-report-costs")).status_code == 403
    assert APIClient().get(reverse("api-report-costs")).status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer gwat_not-a-token")
    assert bad.get(reverse("api-report-costs")).status_code == 401


def test_invalid_parameters_are_named(staff_client: Client) -> None:
    r = staff_client.get(reverse("ops-costs"), {"start": "2026-02-10", "end": "2026-02-01"})
    assert r.status_code == 400
    assert "end must not be before start" in r.content.decode()


def test_unpriced_only_page_shows_unpriced_not_zero(staff_client: Client) -> None:
    world = seed_usage(days=1, per_day=0)
    from django.utils import timezone

    from gateway.usage.models import UsageRecord

    UsageRecord.objects.create(
        request_id="u1",
        created_at=timezone.now() - timedelta(seconds=2),
        endpoint="chat",
        provider=world.providers[0],
        model_alias="x",
        status_code=200,
        cost=None,
    )
    html = staff_client.get(reverse("ops-costs"), {"preset": "today"}).content.decode()
    assert 'id="total-cost">Unpriced<' in html
    assert "$0.00" not in html


def test_health_page_and_check_now(staff_client: Client) -> None:
    provider = Provider.objects.create(name="mock-a", provider_type="mock")
    page = staff_client.get(reverse("ops-health"))
    assert page.status_code == 200
    assert f'id="provider-{provider.pk}"' in page.content.decode()
    assert "not probed yet" in page.content.decode()
    r = staff_client.post(reverse("ops-health-check", args=[provider.pk]), follow=True)
    assert r.status_code == 200
    check = HealthCheck.objects.get(provider=provider)
    assert check.status == "healthy"
    html = r.content.decode()
    row = re.search(rf'<tr id="provider-{provider.pk}" data-status="([a-z]+)"', html)
    assert row is not None and row.group(1) == "healthy"
    assert "mock-a: healthy" in html
    assert staff_client.get(reverse("ops-health-check", args=[provider.pk])).status_code == 405


def test_admin_index_links_to_ops_pages(staff_client: Client) -> None:
    user = make_user(staff=True)
    user.is_superuser = True
    user.save()
    staff_client.force_login(user)
    html = staff_client.get(reverse("admin:index")).content.decode()
    assert reverse("ops-costs") in html and reverse("ops-health") in html


def test_schema_validates_and_ui_is_self_hosted(staff_client: Client) -> None:
    from drf_spectacular.validation import validate_schema

    r = staff_client.get(reverse("api-schema"), {"format": "json"})
    assert r.status_code == 200
    schema = r.json()
    validate_schema(schema)  # raises on an invalid OpenAPI document
    paths = schema["paths"]
    for path in (
        "/api/providers/",
        "/api/mappings/",
        "/api/prices/",
        "/api/virtual-keys/",
        "/api/virtual-keys/{id}/rotate/",
        "/api/reports/costs/",
    ):
        assert path in paths, path
    docs = staff_client.get(reverse("api-docs")).content.decode()
    assert "swagger" in docs.lower() and "cdn" not in docs.lower() and "//unpkg" not in docs
    assert Client().get(reverse("api-schema")).status_code in (401, 403)


def test_check_now_queues_to_celery_when_a_broker_is_configured(
    staff_client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from providers.tasks import health_check_task

    settings.CELERY_BROKER_URL = "redis://broker.invalid:6379/0"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(health_check_task, "delay", lambda **kw: queued.append(kw))
    provider = Provider.objects.create(name="mock-q", provider_type="mock")
    r = staff_client.post(reverse("ops-health-check", args=[provider.pk]), follow=True)
    assert queued == [{"provider_id": provider.pk}]
    assert not HealthCheck.objects.exists()  # the worker records it, not the web process
    assert "queued" in r.content.decode()


@pytest.mark.parametrize("group_by", ["alias", "virtual_key"])
def test_csv_cells_never_start_a_formula(staff_client: Client, group_by: str) -> None:
    """Client-supplied text (a model name, a key name) is exported as text, not a formula."""
    from django.utils import timezone

    from gateway.keys.services import virtual_key_create
    from gateway.usage.models import UsageRecord

    evil = ['=HYPERLINK("http://x.example","y")', "@SUM(1+1)", "+1", "-2", "\tx", "\rx"]
    vkey = virtual_key_create(name="=cmd|' /C calc'!A0")[0]
    UsageRecord.objects.bulk_create(
        UsageRecord(
            request_id=f"evil-{n}",
            created_at=timezone.now(),
            endpoint="chat",
            virtual_key=vkey,
            model_alias=name,
            status_code=404,
            error_type="not_found",
        )
        for n, name in enumerate(evil)
    )
    exported = staff_client.get(reverse("ops-costs-csv"), _query(group_by=group_by))
    assert exported.status_code == 200
    lines = list(csv.reader(io.StringIO(exported.content.decode(), newline="")))
    cells = [cell for line in lines[1:] for cell in line]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    labels = {line[1] for line in lines[1:]}
    if group_by == "alias":
        assert {"'" + name for name in evil} <= labels
    else:
        assert "'=cmd|' /C calc'!A0" in labels


def test_unknown_models_are_one_row_labelled_unknown(staff_client: Client) -> None:
    from django.utils import timezone

    from gateway.usage.events import UNKNOWN_MODEL
    from gateway.usage.models import UsageRecord

    UsageRecord.objects.bulk_create(
        UsageRecord(
            request_id=f"unknown-{n}",
            created_at=timezone.now(),
            endpoint="chat",
            model_alias=UNKNOWN_MODEL,
            status_code=404,
            error_type="model_not_found",
        )
        for n in range(3)
    )
    data = staff_client.get(reverse("api-report-costs"), _query(group_by="alias")).json()
    [row] = [r for r in data["rows"] if r["key"] == UNKNOWN_MODEL]
    assert row["label"] == "(unknown model)" and row["requests"] == 3
