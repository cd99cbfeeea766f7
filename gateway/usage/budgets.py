"""Budgets per virtual key: spend per period, over-budget state, alerts.

The periodic ``budgets_check`` task computes every budgeted key's spend for its current
period (UTC), publishes the set of keys over budget (Redis, read by every gateway process in
the background: no SQL and no Redis round trip on a request) with each key's spend (read by
``/metrics``), and fires each alert kind once per key and period.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import orjson
import redis
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from gateway.keys.models import BudgetPeriod, VirtualKey
from gateway.usage.models import BudgetAlert, BudgetAlertKind, UsageRecord
from providers.redis_conn import sync_redis

logger = logging.getLogger(__name__)

# One hash tag: they are replaced in one MULTI, which a Redis Cluster runs on one slot only.
OVER_KEY = "gw:{budget}:over"
CHECKED_KEY = "gw:{budget}:checked"
#: Hash of budgeted key id -> JSON [name, period, spend, amount], for the metrics scrape.
USE_KEY = "gw:{budget}:use"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def budget_period_start(*, period: str, now: datetime) -> datetime:
    """UTC start of the current ``period`` (``total``: the epoch, i.e. all time)."""
    now = now.astimezone(UTC)
    if period == BudgetPeriod.DAILY:
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == BudgetPeriod.MONTHLY:
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return EPOCH


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budgeted key's spend in its current period."""

    virtual_key_id: int
    name: str
    period: str
    period_start: datetime
    amount: Decimal
    threshold: Decimal
    spend: Decimal

    @property
    def over(self) -> bool:
        return self.spend >= self.amount

    @property
    def threshold_reached(self) -> bool:
        return self.spend >= self.amount * self.threshold


def budget_statuses(*, now: datetime | None = None) -> list[BudgetStatus]:
    """Spend of every enabled key with a budget: one grouped query per period kind.

    Unpriced records (cost NULL) add nothing: they are flagged in reports, not guessed.
    """
    now = now or timezone.now()
    keys = list(
        VirtualKey.objects.filter(budget_amount__isnull=False, is_enabled=True).only(
            "id", "name", "budget_amount", "budget_period", "budget_alert_threshold"
        )
    )
    by_period: dict[str, list[VirtualKey]] = {}
    for key in keys:
        by_period.setdefault(key.budget_period, []).append(key)
    statuses: list[BudgetStatus] = []
    for period, members in by_period.items():
        start = budget_period_start(period=period, now=now)
        spend = dict(
            UsageRecord.objects.filter(
                virtual_key_id__in=[k.id for k in members], created_at__gte=start
            )
            .values("virtual_key_id")
            .annotate(total=Sum("cost"))
            .values_list("virtual_key_id", "total")
        )
        for key in members:
            assert key.budget_amount is not None
            statuses.append(
                BudgetStatus(
                    virtual_key_id=key.id,
                    name=key.name,
                    period=period,
                    period_start=start,
                    amount=key.budget_amount,
                    threshold=key.budget_alert_threshold,
                    spend=spend.get(key.id) or Decimal(0),
                )
            )
    return statuses


def budget_over_key_ids(*, now: datetime | None = None) -> frozenset[int]:
    """Ids of the keys at or over budget now (the gateway's own view when there is no Redis)."""
    return frozenset(s.virtual_key_id for s in budget_statuses(now=now) if s.over)


def budget_state_publish(*, over: frozenset[int], statuses: Sequence[BudgetStatus] = ()) -> bool:
    """Replace the shared over-budget set (and the spend of ``statuses``, which ``/metrics``
    reads) in Redis atomically; False without Redis."""
    client = sync_redis()
    if client is None:
        return False
    try:
        pipe = client.pipeline(transaction=True)
        pipe.delete(OVER_KEY, USE_KEY)
        if over:
            pipe.sadd(OVER_KEY, *sorted(over))
        if statuses:
            pipe.hset(
                USE_KEY,
                mapping={
                    str(s.virtual_key_id): orjson.dumps(
                        [s.name, s.period, str(s.spend), str(s.amount)]
                    )
                    for s in statuses
                },
            )
        pipe.set(CHECKED_KEY, timezone.now().isoformat())
        pipe.execute()
    except redis.RedisError:
        # Gateways keep their last state (and fall back to the database if it never came).
        logger.warning("budget: could not publish the over-budget set to Redis")
        return False
    return True


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """A budgeted key's spend and budget as last published (what ``/metrics`` shows)."""

    virtual_key_id: int
    name: str
    period: str
    spend: Decimal
    amount: Decimal


def budget_use_latest(*, limit: int) -> list[BudgetUse]:
    """The ``limit`` keys with the largest share of their budget used.

    With Redis: what the last ``budgets_check`` published (one HGETALL, no SQL; empty before
    its first run). Without Redis: computed now from the usage records.
    """
    client = sync_redis()
    if client is None:
        uses = [
            BudgetUse(s.virtual_key_id, s.name, s.period, s.spend, s.amount)
            for s in budget_statuses()
        ]
    else:
        try:
            raw: dict[bytes, bytes] = client.hgetall(USE_KEY)  # type: ignore[assignment]
        finally:
            client.close()
        uses = []
        for field, value in raw.items():
            name, period, spend, amount = orjson.loads(value)
            uses.append(BudgetUse(int(field), name, period, Decimal(spend), Decimal(amount)))
    uses.sort(key=lambda u: (-(u.spend / u.amount if u.amount else Decimal(0)), u.virtual_key_id))
    return uses[:limit]


@dataclass(slots=True)
class BudgetCheckResult:
    checked: int
    over: frozenset[int]
    fired: list[int]  # BudgetAlert ids created by this run


def budget_alert_fire(*, status: BudgetStatus, kind: str) -> BudgetAlert | None:
    """Create the alert for (key, period, kind) unless it exists; deliver after commit."""
    with transaction.atomic():
        alert, created = BudgetAlert.objects.get_or_create(
            virtual_key_id=status.virtual_key_id,
            period_start=status.period_start,
            kind=kind,
            defaults={
                "period": status.period,
                "spend": status.spend,
                "budget_amount": status.amount,
                "threshold": status.threshold,
            },
        )
        if not created:
            return None
        transaction.on_commit(lambda: _enqueue_delivery(alert.id))
    return alert


def _enqueue_delivery(alert_id: int) -> None:
    from gateway.usage.tasks import budget_alert_deliver_task  # tasks import this module

    budget_alert_deliver_task.delay(alert_id=alert_id)


def budgets_check(*, now: datetime | None = None) -> BudgetCheckResult:
    """Compute spend, publish the over-budget set, fire new alerts."""
    statuses = budget_statuses(now=now)
    over = frozenset(s.virtual_key_id for s in statuses if s.over)
    budget_state_publish(over=over, statuses=statuses)
    fired: list[int] = []
    for status in statuses:
        kinds = []
        if status.threshold_reached:
            kinds.append(BudgetAlertKind.THRESHOLD)
        if status.over:
            kinds.append(BudgetAlertKind.EXCEEDED)
        for kind in kinds:
            alert = budget_alert_fire(status=status, kind=kind)
            if alert is not None:
                fired.append(alert.id)
    return BudgetCheckResult(checked=len(statuses), over=over, fired=fired)


def _message(alert: BudgetAlert) -> tuple[str, str, dict[str, object]]:
    key = alert.virtual_key
    what = "exceeded" if alert.kind == BudgetAlertKind.EXCEEDED else "reached its alert threshold"
    pct = (alert.spend / alert.budget_amount * 100) if alert.budget_amount else Decimal(0)
    subject = f"[llm-gateway] Budget {what}: {key.name} ({alert.period})"
    body = (
        f"Virtual key '{key.name}' (id {key.id}) has {what} for the {alert.period} period "
        f"starting {alert.period_start:%Y-%m-%d %H:%M} UTC.\n\n"
        f"Spend: ${alert.spend.quantize(Decimal('0.01'))} of ${alert.budget_amount} "
        f"({pct:.1f}%); alert threshold {alert.threshold * 100:.0f}%.\n"
    )
    if alert.kind == BudgetAlertKind.EXCEEDED:
        body += "Requests with this key are refused (402 budget_exceeded) until the period ends.\n"
    payload: dict[str, object] = {
        "type": f"budget.{alert.kind}",
        "virtual_key": {"id": key.id, "name": key.name},
        "period": alert.period,
        "period_start": alert.period_start.isoformat(),
        "budget": str(alert.budget_amount),
        "spend": str(alert.spend),
        "threshold": str(alert.threshold),
        "fired_at": alert.created_at.isoformat(),
    }
    return subject, body, payload


def budget_alert_deliver(*, alert_id: int) -> BudgetAlert | None:
    """Send an alert: log line, email to BUDGET_ALERT_EMAILS, POST to BUDGET_ALERT_WEBHOOK_URL.

    Delivered once: a redelivered task finds ``delivered_at`` set and does nothing. Failures
    are logged and kept on the alert; they are not retried (an alert is a notice, and the
    next period or kind fires anew).
    """
    alert = BudgetAlert.objects.select_related("virtual_key").filter(pk=alert_id).first()
    if alert is None or alert.delivered_at is not None:
        return alert
    subject, body, payload = _message(alert)
    logger.warning("%s: %s", subject, body.splitlines()[0])
    errors: list[str] = []
    if settings.BUDGET_ALERT_EMAILS:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, settings.BUDGET_ALERT_EMAILS)
        except Exception as exc:
            logger.exception("budget alert %s: email failed", alert.id)
            errors.append(f"email: {exc}")
    if settings.BUDGET_ALERT_WEBHOOK_URL:
        try:
            response = httpx.post(
                settings.BUDGET_ALERT_WEBHOOK_URL,
                json=payload,
                timeout=settings.BUDGET_ALERT_WEBHOOK_TIMEOUT,
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            logger.warning("budget alert %s: webhook failed: %s", alert.id, exc)
            errors.append(f"webhook: {exc}")
    alert.delivered_at = timezone.now()
    alert.delivery_error = "\n".join(errors)
    alert.save(update_fields=["delivered_at", "delivery_error"])
    return alert
