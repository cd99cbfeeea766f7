"""Budgets: spend per period, alerts once per period and kind, 402 from the cached state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.core import mail
from django.utils import timezone

from gateway.keys.models import VirtualKey
from gateway.usage.budget_state import budget_state
from gateway.usage.budgets import OVER_KEY, budget_period_start, budgets_check
from gateway.usage.events import set_usage_queue
from gateway.usage.models import BudgetAlert, UsageRecord
from gateway.usage.queues import DatabaseUsageQueue
from providers.redis_conn import sync_redis
from tests.factories import make_mapping_row, make_mock_provider, make_vkey
from tests.usage.conftest import WebhookReceiver, post_chats


def spend(vkey: VirtualKey, amount: str, *, at: datetime | None = None) -> None:
    UsageRecord.objects.create(
        request_id=f"spend-{UsageRecord.objects.count()}-{amount}",
        created_at=at or timezone.now(),
        endpoint="chat",
        virtual_key=vkey,
        status_code=200,
        cost=Decimal(amount),
    )


def test_period_starts_are_utc_boundaries() -> None:
    now = datetime(2025, 3, 17, 15, 4, 5, tzinfo=UTC)
    assert budget_period_start(period="daily", now=now) == datetime(2025, 3, 17, tzinfo=UTC)
    assert budget_period_start(period="monthly", now=now) == datetime(2025, 3, 1, tzinfo=UTC)
    assert budget_period_start(period="total", now=now) == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_threshold_alert_fires_once_then_exceeded_once(
    settings: Any,
    celery_eager: None,
    webhook: WebhookReceiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.BUDGET_ALERT_EMAILS = ["ops@example.com"]
    settings.BUDGET_ALERT_WEBHOOK_URL = webhook.url
    vkey, _ = make_vkey(
        name="marketing-app",
        budget_amount=Decimal("1.00"),
        budget_period="monthly",
        budget_alert_threshold=Decimal("0.8"),
    )
    now = timezone.now()
    start = budget_period_start(period="monthly", now=now)
    spend(vkey, "5.00", at=start - timedelta(seconds=1))  # last month: does not count
    spend(vkey, "0.50")
    spend(vkey, "0.35")

    with django_capture_on_commit_callbacks(execute=True):
        result = budgets_check()
    assert result.over == frozenset()
    assert len(result.fired) == 1
    assert len(mail.outbox) == 1
    assert "marketing-app" in mail.outbox[0].subject and mail.outbox[0].to == ["ops@example.com"]
    assert [p["type"] for p in webhook.posts] == ["budget.threshold"]
    assert webhook.posts[0]["spend"] == "0.8500000000"
    alert = BudgetAlert.objects.get()
    assert alert.delivered_at is not None and alert.delivery_error == ""

    with django_capture_on_commit_callbacks(execute=True):
        assert budgets_check().fired == []  # same period, same kind: nothing new
    assert len(mail.outbox) == 1 and len(webhook.posts) == 1

    spend(vkey, "0.20")
    with django_capture_on_commit_callbacks(execute=True):
        result = budgets_check()
    assert result.over == frozenset({vkey.id})
    assert [p["type"] for p in webhook.posts] == ["budget.threshold", "budget.exceeded"]
    assert len(mail.outbox) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert budgets_check().fired == []
    assert len(mail.outbox) == 2 and len(webhook.posts) == 2


@pytest.mark.django_db
def test_failed_webhook_is_recorded_not_retried(
    settings: Any, celery_eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    from tests.usage.conftest import free_port

    settings.BUDGET_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{free_port()}/nobody"
    vkey, _ = make_vkey(budget_amount=Decimal("1"), budget_period="daily")
    spend(vkey, "2")
    with django_capture_on_commit_callbacks(execute=True):
        assert len(budgets_check().fired) == 2
    errors = set(BudgetAlert.objects.values_list("delivery_error", flat=True))
    assert all(e.startswith("webhook:") for e in errors)
    assert BudgetAlert.objects.filter(delivered_at__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_over_budget_key_gets_402_from_the_gateway(gateway_app: Any) -> None:
    # No Redis: each gateway process computes the over-budget set in the background.
    set_usage_queue(DatabaseUsageQueue())
    provider = make_mock_provider()
    make_mapping_row(provider)
    over, over_key = make_vkey(budget_amount=Decimal("1.00"), budget_period="total")
    fine, fine_key = make_vkey(budget_amount=Decimal("1.00"), budget_period="total")
    spend(over, "1.00")
    spend(fine, "0.10")

    async def run() -> tuple[Any, Any]:
        refused = (await post_chats(gateway_app, over_key, 1))[0]
        served = (await post_chats(gateway_app, fine_key, 1))[0]
        return refused, served

    refused, served = asyncio.run(run())
    assert refused.status_code == 402
    error = orjson.loads(refused.content)["error"]
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    assert served.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_over_budget_state_is_read_from_redis(with_redis: str, gateway_app: Any) -> None:
    provider = make_mock_provider()
    make_mapping_row(provider)
    vkey, key = make_vkey(budget_amount=Decimal("5"), budget_period="daily")
    spend(vkey, "6")
    assert budgets_check().over == frozenset({vkey.id})
    client = sync_redis()
    assert client is not None
    assert client.smembers(OVER_KEY) == {str(vkey.id).encode()}

    async def ask() -> int:
        return (await post_chats(gateway_app, key, 1))[0].status_code

    assert asyncio.run(ask()) == 402
    # The check task publishes a new set (budget raised): the gateway follows on refresh,
    # without touching the database on the request.
    VirtualKey.objects.filter(pk=vkey.pk).update(budget_amount=Decimal("50"))
    budgets_check()
    asyncio.run(budget_state.refresh())
    assert budget_state.over == frozenset()
    assert asyncio.run(ask()) == 200
