"""The request log: filters narrow the rows, keyset pages, bad filters come back as a form,
the CSV is spreadsheet-safe, the tail returns only newer rows, cost-report rows link here."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from gateway.reports import request_log
from gateway.usage.models import UsageRecord
from tests.factories import make_provider_row, make_usage, make_vkey
from tests.reports.helpers import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(make_user(staff=True))
    return client


def _ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-id="(\d+)"', html)]


def _world() -> dict[str, object]:
    now = timezone.now()
    p1 = make_provider_row(name="openai-a")
    p2 = make_provider_row(name="openai-b")
    app = make_vkey("app-one").row
    attempts = [
        {"provider_id": p1.pk, "provider_name": "openai-a", "key_name": "k1", "status": 429,
         "error": "rate_limited", "duration_ms": 12.0},
        {"provider_id": p2.pk, "provider_name": "openai-b", "key_name": "k2", "status": 200,
         "error": "", "duration_ms": 40.0},
    ]  # fmt: skip
    rows = [
        make_usage(p1, created_at=now - timedelta(minutes=5), model_alias="gpt-4o"),
        make_usage(p2, created_at=now - timedelta(minutes=4), model_alias="gpt-4o",
                   virtual_key=app, attempts=attempts, stream=True, ttft_ms=80.0),
        make_usage(p1, created_at=now - timedelta(minutes=3), model_alias="=cmd|' /C calc'!A0",
                   status_code=502, cost=None),
        make_usage(p2, created_at=now - timedelta(minutes=2), model_alias="mini",
                   status_code=429, account_group=3),
    ]  # fmt: skip
    return {"p1": p1, "p2": p2, "app": app, "rows": rows}


def test_staff_only(client: Client) -> None:
    response = client.get(reverse("ops-requests"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_filters_narrow_the_rows(staff_client: Client) -> None:
    w = _world()
    rows: list[UsageRecord] = w["rows"]  # type: ignore[assignment]
    url = reverse("ops-requests")
    all_ids = _ids(staff_client.get(url).content.decode())
    assert all_ids == [r.pk for r in reversed(rows)]  # newest first
    cases = {
        "instance": (str(w["p1"].pk), [rows[2].pk, rows[0].pk]),  # type: ignore[attr-defined]
        "key": (str(w["app"].pk), [rows[1].pk]),  # type: ignore[attr-defined]
        "alias": ("gpt-4o", [rows[1].pk, rows[0].pk]),
        "status": ("5xx", [rows[2].pk]),
        "streamed": ("yes", [rows[1].pk]),
        "group": ("3", [rows[3].pk]),
    }
    for param, (value, expected) in cases.items():
        html = staff_client.get(url, {param: value}).content.decode()
        assert _ids(html) == expected, param
    since = (timezone.now() - timedelta(minutes=3, seconds=30)).strftime("%Y-%m-%dT%H:%M:%S")
    assert _ids(staff_client.get(url, {"start": since}).content.decode()) == [
        rows[3].pk,
        rows[2].pk,
    ]


def test_attempts_are_a_readable_trail_and_rows_open_a_detail(staff_client: Client) -> None:
    w = _world()
    record = w["rows"][1]  # type: ignore[index]
    html = staff_client.get(reverse("ops-requests")).content.decode()
    assert "openai-a (k1) → 429 rate_limited, 12 ms" in html
    assert "provider_id" not in html  # no raw JSON
    detail_url = reverse("ops-request-detail", args=[record.pk])
    assert detail_url in html
    detail = staff_client.get(detail_url)
    assert detail.status_code == 200
    text = detail.content.decode()
    assert record.request_id in text and "rate_limited" in text and "openai-b" in text
    assert staff_client.get(reverse("ops-request-detail", args=[999_999])).status_code == 404


def test_bad_filters_give_the_form_back_with_values(staff_client: Client) -> None:
    _world()
    response = staff_client.get(
        reverse("ops-requests"), {"status": "3xx", "group": "99", "alias": "gpt-4o"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="filter-errors"' in html and "status" in html and "group" in html
    assert 'name="group" value="99"' in html  # the value typed is kept
    assert '<option value="gpt-4o" selected>' in html
    assert 'id="log-filters"' in html
    csv_response = staff_client.get(reverse("ops-requests-csv"), {"end": "not-a-date"})
    assert csv_response.status_code == 400 and 'id="filter-errors"' in csv_response.content.decode()


def test_keyset_pages_walk_every_row_once(staff_client: Client) -> None:
    provider = make_provider_row(name="many")
    now = timezone.now()
    same = now - timedelta(minutes=1)
    created = [make_usage(provider, created_at=same if i % 3 == 0 else now - timedelta(seconds=i))
               for i in range(2 * request_log.PAGE_SIZE + 7)]  # fmt: skip
    seen: list[int] = []
    params: dict[str, object] = {}
    while True:
        page = request_log.log_page(params)
        seen += [r["id"] for r in page.rows]
        if page.next_before is None:
            break
        params = {"before": page.next_before}
    assert sorted(seen) == sorted(r.pk for r in created) and len(seen) == len(set(seen))
    html = staff_client.get(reverse("ops-requests")).content.decode()
    assert 'id="older"' in html


def test_tail_returns_only_newer_rows(staff_client: Client) -> None:
    w = _world()
    rows = w["rows"]
    newest = rows[-1].pk  # type: ignore[index]
    answer = staff_client.get(reverse("ops-requests-tail"), {"after": newest}).json()
    assert answer["count"] == 0 and answer["newest_id"] == newest
    later = make_usage(w["p1"], model_alias="gpt-4o")  # type: ignore[arg-type]
    make_usage(w["p2"], model_alias="mini")  # type: ignore[arg-type]
    answer = staff_client.get(
        reverse("ops-requests-tail"), {"after": newest, "alias": "gpt-4o"}
    ).json()
    assert answer["count"] == 1 and answer["newest_id"] == later.pk
    assert f'data-id="{later.pk}"' in answer["html"]
    bad = staff_client.get(reverse("ops-requests-tail"), {"after": "x"})
    assert bad.status_code == 400 and "after" in bad.json()["errors"]


def test_csv_has_the_same_filters_and_neutralised_cells(staff_client: Client) -> None:
    w = _world()
    response = staff_client.get(reverse("ops-requests-csv"), {"instance": w["p1"].pk})  # type: ignore[attr-defined]
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:3] == ["time_utc", "request_id", "endpoint"]
    assert len(rows) == 3  # header + the two records on p1
    aliases = [r[4] for r in rows[1:]]
    assert "'=cmd|' /C calc'!A0" in aliases  # a formula never runs in a spreadsheet
    assert "gpt-4o" in aliases


def test_cost_report_rows_link_to_the_matching_log(staff_client: Client) -> None:
    w = _world()
    html = staff_client.get(reverse("ops-costs"), {"group_by": "provider"}).content.decode()
    links = re.findall(r'href="(/ops/requests/\?[^"]+)"', html)
    p1_link = next(link for link in links if f"instance={w['p1'].pk}" in link)  # type: ignore[attr-defined]
    logged = staff_client.get(p1_link.replace("&amp;", "&"))
    assert logged.status_code == 200
    assert sorted(_ids(logged.content.decode())) == sorted(
        r.pk
        for r in w["rows"]
        if r.provider_id == w["p1"].pk  # type: ignore[attr-defined]
    )


def test_trail_tolerates_malformed_attempts() -> None:
    steps = request_log.attempt_trail([{"provider_name": "x", "status": None, "error": "timeout"},
                                       "junk", 3])  # fmt: skip
    assert [str(s) for s in steps] == ["x → timeout"]
    assert request_log.attempt_trail({"not": "a list"}) == []
    assert Decimal  # imported for readers comparing costs
