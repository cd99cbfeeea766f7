"""Usage fixtures for report tests, and declarative API test mixins (NetBox style).

``seed_usage`` writes a deterministic spread of records over several days, several instances,
keys, account groups, aliases and apps, with errors and unpriced records among them; tests
compare report numbers against sums computed here in Python from the same rows.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Model
from rest_framework.test import APIClient

from gateway.adminapi.services import api_token_create
from gateway.keys.models import VirtualKey
from gateway.keys.services import virtual_key_create
from gateway.reports.selectors import COST_PLACES, utc_today
from gateway.usage.models import UsageRecord
from mappings.models import ModelProviderMapping
from providers.models import Provider, ProviderKeyCredential

_ids = itertools.count(1)


@dataclass
class World:
    providers: list[Provider]
    keys: list[ProviderKeyCredential]
    vkeys: list[VirtualKey]
    records: list[UsageRecord]


def seed_usage(*, days: int = 5, per_day: int = 12, seed: int = 7) -> World:
    """Records over the last ``days`` days (today included)."""
    rng = random.Random(seed)
    p1 = Provider.objects.create(name="openai-prod", provider_type="openai")
    p2 = Provider.objects.create(
        name="azure-eu", provider_type="azure_openai", base_url="https://x.example", api_version="v"
    )
    p3 = Provider.objects.create(name="claude", provider_type="anthropic")
    keys = [
        ProviderKeyCredential.objects.create(
            provider=p1, key_name="k1", api_key="sk-a1", account_group=1
        ),
        ProviderKeyCredential.objects.create(
            provider=p1, key_name="k2", api_key="sk-a2", account_group=2
        ),
        ProviderKeyCredential.objects.create(
            provider=p2, key_name="k3", api_key="sk-b1", account_group=3
        ),
        ProviderKeyCredential.objects.create(
            provider=p3, key_name="k4", api_key="sk-c1", account_group=1
        ),
    ]
    m1 = ModelProviderMapping.objects.create(
        model_alias="gpt-4o", provider=p1, provider_model_id="gpt-4o"
    )
    vkeys = [virtual_key_create(name=f"app-{n}-{next(_ids)}")[0] for n in ("web", "batch")]
    aliases = [("gpt-4o", "gpt-4o"), ("gpt-4o-mini", "gpt-4o-mini"), ("claude", "claude-3")]
    today = utc_today()
    records = []
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        for n in range(per_day):
            key = rng.choice(keys)
            alias, model = rng.choice(aliases)
            status = rng.choice([200] * 8 + [429, 502])
            cost: Decimal | None = Decimal(rng.randint(0, 999_999)) / Decimal(1_000_000)
            if rng.random() < 0.2:
                cost = None  # unpriced
            at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=n * 7 + 1)
            records.append(
                UsageRecord(
                    request_id=f"seed-{seed}-{next(_ids)}",
                    created_at=min(at, datetime.now(UTC) - timedelta(seconds=1)),
                    endpoint="chat",
                    virtual_key=rng.choice(vkeys),
                    model_alias=alias,
                    provider=key.provider,
                    provider_key=key,
                    mapping=m1 if alias == "gpt-4o" and key.provider == p1 else None,
                    account_group=key.account_group,
                    provider_model=model,
                    status_code=status,
                    error_type="" if status == 200 else "upstream",
                    prompt_tokens=rng.randint(0, 5000),
                    completion_tokens=rng.randint(0, 900),
                    latency_ms=rng.uniform(50, 2000),
                    cost=cost,
                )
            )
    UsageRecord.objects.bulk_create(records)
    return World(providers=[p1, p2, p3], keys=keys, vkeys=vkeys, records=records)


def record_group(record: UsageRecord, group_by: str) -> str:
    """The report's group key of a record (what the selector must put it under)."""
    if group_by == "provider":
        return str(record.provider_id)
    if group_by == "provider_type":
        assert record.provider is not None
        return record.provider.provider_type
    if group_by == "account_group":
        return str(record.account_group)
    if group_by == "key":
        return str(record.provider_key_id)
    if group_by == "alias":
        return record.model_alias
    if group_by == "provider_model":
        return record.provider_model
    if group_by == "virtual_key":
        return str(record.virtual_key_id)
    if group_by == "day":
        return record.created_at.astimezone(UTC).date().isoformat()
    raise AssertionError(group_by)


def python_sums(
    records: Iterable[UsageRecord], group_by: str, start: date, end: date
) -> dict[str, dict[str, Any]]:
    """Per-group sums computed in Python from the raw rows: the reference."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "requests": 0,
            "errors": 0,
            "prompt": 0,
            "completion": 0,
            "cost": Decimal(0),
            "unpriced": 0,
        }
    )
    for r in records:
        if not start <= r.created_at.astimezone(UTC).date() <= end:
            continue
        g = out[record_group(r, group_by)]
        g["requests"] += 1
        g["errors"] += r.status_code >= 400
        g["prompt"] += r.prompt_tokens
        g["completion"] += r.completion_tokens
        if r.cost is None:
            g["unpriced"] += 1
        else:
            g["cost"] += r.cost
    for g in out.values():
        g["cost"] = g["cost"].quantize(COST_PLACES)
    return dict(out)


# Apps whose models the admin API and the report endpoints serve.
GATEWAY_APPS = ("providers", "mappings", "gateway", "usage", "reports", "adminapi")


def all_gateway_permissions() -> list[str]:
    """Every model permission of the gateway's apps, as ``app_label.codename``."""
    return [
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(content_type__app_label__in=GATEWAY_APPS)
    ]


def make_user(*, staff: bool, name: str | None = None, perms: Iterable[str] = ()) -> Any:
    user = get_user_model().objects.create_user(
        username=name or f"user-{next(_ids)}", password="pw-123456789", is_staff=staff
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def token_client(*, staff: bool, perms: Iterable[str] = ()) -> APIClient:
    """An API client authenticated with a fresh admin API token of a (non-)staff user
    holding ``perms`` (``app_label.codename``)."""
    _, plaintext = api_token_create(user=make_user(staff=staff, perms=perms), name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


class APIViewTests:
    """Declarative list/create/retrieve/update/delete tests for one admin API endpoint.

    Subclasses set ``url`` (the list URL), ``make`` (creates one row), ``create_data`` and
    ``update_data``; ``secret_values`` lists strings that must never appear in any response.
    """

    url: ClassVar[str]
    model: ClassVar[type[Model]]
    make: ClassVar[Callable[[], Model]]
    create_data: ClassVar[Callable[[], dict[str, Any]]]
    update_data: ClassVar[dict[str, Any]] = {}
    secret_values: ClassVar[list[str]] = []

    def _check_secrets(self, response: Any) -> None:
        body = response.content.decode()
        for secret in self.secret_values:
            assert secret not in body, (
                f"secret {secret!r} leaked in {response.request['PATH_INFO']}"
            )

    def test_list_paginated(self, api: APIClient) -> None:
        type(self).make()
        r = api.get(self.url)
        assert r.status_code == 200, r.content
        assert {"count", "results"} <= set(r.json())
        assert r.json()["count"] >= 1
        self._check_secrets(r)

    def test_create_retrieve_update_delete(self, api: APIClient) -> None:
        r = api.post(self.url, type(self).create_data(), format="json")
        assert r.status_code == 201, r.content
        self._check_secrets(r)
        pk = r.json()["id"]
        detail = f"{self.url}{pk}/"
        r = api.get(detail)
        assert r.status_code == 200
        self._check_secrets(r)
        if self.update_data:
            r = api.patch(detail, self.update_data, format="json")
            assert r.status_code == 200, r.content
            for k, v in self.update_data.items():
                assert r.json()[k] == v
            self._check_secrets(r)
        r = api.delete(detail)
        assert r.status_code == 204, r.content
        assert not self.model.objects.filter(pk=pk).exists()

    def test_non_staff_token_forbidden(self, db: None) -> None:
        client = token_client(staff=False)
        assert client.get(self.url).status_code == 403
        assert client.post(self.url, {}, format="json").status_code == 403

    def test_anonymous_refused(self, db: None) -> None:
        assert APIClient().get(self.url).status_code in (401, 403)

    # --- model permissions, as the admin applies them --------------------------------------

    def _perm(self, action: str) -> str:
        meta = self.model._meta
        return f"{meta.app_label}.{action}_{meta.model_name}"

    def test_staff_without_model_permissions_gets_403_on_everything(self, db: None) -> None:
        obj = type(self).make()
        client = token_client(staff=True)
        detail = f"{self.url}{obj.pk}/"
        assert client.get(self.url).status_code == 403
        assert client.options(self.url).status_code == 403
        assert client.get(detail).status_code == 403
        assert client.post(self.url, type(self).create_data(), format="json").status_code == 403
        assert client.patch(detail, self.update_data, format="json").status_code == 403
        assert client.delete(detail).status_code == 403
        assert self.model.objects.filter(pk=obj.pk).exists()

    def test_view_permission_reads_only(self, db: None) -> None:
        obj = type(self).make()
        client = token_client(staff=True, perms=[self._perm("view")])
        detail = f"{self.url}{obj.pk}/"
        assert client.get(self.url).status_code == 200
        assert client.get(detail).status_code == 200
        assert client.post(self.url, type(self).create_data(), format="json").status_code == 403
        assert client.patch(detail, self.update_data, format="json").status_code == 403
        assert client.delete(detail).status_code == 403
        assert self.model.objects.filter(pk=obj.pk).exists()

    def test_each_write_needs_its_own_permission(self, db: None) -> None:
        obj = type(self).make()
        detail = f"{self.url}{obj.pk}/"
        # add without view: may create, may not read.
        adder = token_client(staff=True, perms=[self._perm("add")])
        assert adder.post(self.url, type(self).create_data(), format="json").status_code == 201
        assert adder.get(self.url).status_code == 403
        assert adder.delete(detail).status_code == 403
        deleter = token_client(staff=True, perms=[self._perm("delete")])
        assert deleter.patch(detail, self.update_data, format="json").status_code == 403
        assert deleter.delete(detail).status_code == 204
