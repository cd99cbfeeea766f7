"""Admin and report API inputs found answering 500, pinned: each is a 400 in the API's error
shape now, nothing is stored, and no secret from the request comes back."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from gateway.adminapi.services import api_token_create
from providers.models import Provider

pytestmark = pytest.mark.django_db

SECRET = "sk-fuzz-secret-value-0123456789"


@pytest.fixture
def api(db: None) -> Client:  # session (for /ops/) and token (for /api/)
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "x" * 20)
    _, token = api_token_create(user=user, name="regressions")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", raise_request_exception=False)
    client.force_login(user)
    return client


def assert_api_400(response, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.content[:500]
    error = response.json()["error"]
    assert error["type"] and error["message"]
    if field is not None:
        assert field in str(error.get("fields")), error
    assert SECRET not in response.content.decode()
    return error


def test_form_encoded_null_custom_headers(api: Client) -> None:
    for field in ("custom_headers", "forward_headers"):
        data = {"name": f"form-{field}", "provider_type": "openai", field: "null"}
        assert_api_400(api.post("/api/providers/", data), field)
        body = {"name": f"json-{field}", "provider_type": "openai", field: None}
        assert_api_400(api.post("/api/providers/", body, content_type="application/json"), field)
    assert not Provider.objects.exists()


@pytest.mark.parametrize(
    "key",
    [
        {"key_name": "k", "api_key": SECRET, "account_group": 99},
        {"key_name": "k", "api_key": SECRET, "base_url": "ftp://nowhere"},
        {"key_name": "", "api_key": SECRET},
        {"key_name": "k", "api_key": SECRET, "organization": "x" * 500},
    ],
)
def test_nested_key_failing_validation(api: Client, key: dict) -> None:
    body = {"name": "nested", "provider_type": "openai", "keys": [key]}
    assert_api_400(api.post("/api/providers/", body, content_type="application/json"))
    assert not Provider.objects.exists()


@pytest.mark.parametrize(
    "query",
    [
        "limit=99999999999999999999999",
        "offset=99999999999999999999999",
        "limit=-1",
        "offset=abc",
        "limit=1.5",
    ],
)
def test_pagination_parameters(api: Client, query: str) -> None:
    assert_api_400(api.get(f"/api/providers/?{query}"))


def test_pagination_still_pages(api: Client) -> None:
    for i in range(3):
        Provider.objects.create(name=f"p{i}", provider_type="mock")
    page = api.get("/api/providers/?limit=2&offset=1").json()
    assert page["count"] == 3 and [p["name"] for p in page["results"]] == ["p1", "p2"]


@pytest.mark.parametrize("path", ["/api/reports/costs/", "/ops/costs/", "/ops/costs.csv"])
@pytest.mark.parametrize(
    "query",
    [
        "provider_id=99999999999999999999999",
        "virtual_key_id=9223372036854775808",
        "provider_key_id=99999999999999999999999",
        "start=2026-1-1",
    ],
)
def test_report_parameters(api: Client, path: str, query: str) -> None:
    response = api.get(f"{path}?{query}")
    assert response.status_code == 400, response.content[:300]


@pytest.mark.parametrize("path", ["/api/providers/a%2Fb/", "/api/nope", "/api/providers/1.2/"])
def test_unknown_api_path_is_json_404(api: Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response["content-type"] == "application/json"
    assert response.json()["error"]["message"]
