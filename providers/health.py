"""Health probes of provider instances: probe, record, feed the circuit breaker.

A probe is the cheapest request that proves an instance and its key work: ``models`` (list
models, free) or ``completion`` (a 1-token completion with the instance's probe model). It goes
through :func:`providers.http.send` like every other upstream call, so the instance's custom
headers are on it. The async core (:func:`probe_instance`) does no database work; the sync
service (:func:`health_check_run`) loads the instance, probes it, writes a
:class:`~providers.models.HealthCheck` and updates the circuit (Celery and ``check_providers``
call it).

Status: ``healthy``; ``degraded`` when the instance answered but slower than
``HEALTH_CHECK_DEGRADED_MS`` or with 429 (it is up, just busy); ``down`` otherwise. Only
``down`` counts as a failure for the circuit breaker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from django.apps import apps
from django.conf import settings
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils import timezone

from providers import http, redaction
from providers.adapters import get_adapter
from providers.adapters.base import UpstreamRequest
from providers.circuit import CircuitState, circuit_record_probe_sync
from providers.health_counts import health_outcome_count
from providers.models import (
    HealthCheck,
    HealthErrorCategory,
    HealthProbe,
    HealthStatus,
    Provider,
    ProviderKeyCredential,
)
from providers.presets import keyless
from providers.snapshot import ProviderSnapshot, provider_snapshot_build

logger = logging.getLogger(__name__)

MAX_MESSAGE = 500
PROBE_BODY: dict[str, Any] = {
    "messages": [{"role": "user", "content": "ping"}],
    "max_tokens": 1,
    "temperature": 0,
}


@dataclass(slots=True)
class ProbeOutcome:
    """What one probe found (nothing stored yet)."""

    status: str
    probe: str
    latency_ms: float | None = None
    http_status: int | None = None
    error_category: str = ""
    error_message: str = ""

    @property
    def ok(self) -> bool:
        """Whether the circuit breaker should count this as a success."""
        return self.status != HealthStatus.DOWN


@dataclass(slots=True)
class ProbeResult:
    """A recorded probe: the outcome plus the circuit state it left (``check_providers``)."""

    provider_id: int
    name: str
    provider_type: str
    outcome: ProbeOutcome
    circuit: CircuitState
    check_id: int


def redact(text: str, provider: ProviderSnapshot) -> str:
    """``text`` without the instance's secrets or credentials embedded in URLs, then cut to
    what ``HealthCheck.error_message`` holds."""
    return redaction.redact_for(provider, text, limit=MAX_MESSAGE)


def probe_request(provider: ProviderSnapshot) -> tuple[str, UpstreamRequest]:
    """(probe kind, request) for ``provider`` with its primary (or first enabled) key.

    A ``completion`` probe without a probe model falls back to ``models``: a configuration gap
    must not read as an outage and open the circuit.
    """
    adapter = get_adapter(provider.provider_type)
    key = provider.keys[0] if provider.keys else None
    if provider.health_check_probe == HealthProbe.COMPLETION and provider.health_check_model:
        request = adapter.chat_request(
            provider=provider,
            key=key,
            model=provider.health_check_model,
            body=dict(PROBE_BODY),
            stream=False,
        )
        return HealthProbe.COMPLETION, request
    return HealthProbe.MODELS, adapter.models_request(provider=provider, key=key)


def _classify_status(status: int, latency_ms: float) -> tuple[str, str]:
    if status == 429:
        return HealthStatus.DEGRADED, HealthErrorCategory.RATE_LIMIT
    if status in (401, 403):
        return HealthStatus.DOWN, HealthErrorCategory.AUTH
    if status >= 500:
        return HealthStatus.DOWN, HealthErrorCategory.SERVER_ERROR
    if status >= 400:
        return HealthStatus.DOWN, HealthErrorCategory.CLIENT_ERROR
    if status >= 300:
        return HealthStatus.DOWN, HealthErrorCategory.BAD_RESPONSE
    if latency_ms > settings.HEALTH_CHECK_DEGRADED_MS:
        return HealthStatus.DEGRADED, HealthErrorCategory.SLOW
    return HealthStatus.HEALTHY, HealthErrorCategory.NONE


async def probe_instance(provider: ProviderSnapshot) -> ProbeOutcome:
    """Probe ``provider`` once (no database work). Never raises for upstream trouble."""
    kind: str = (
        HealthProbe.COMPLETION
        if provider.health_check_probe == HealthProbe.COMPLETION and provider.health_check_model
        else HealthProbe.MODELS
    )
    if provider.error:
        return ProbeOutcome(
            HealthStatus.DOWN,
            kind,
            error_category=HealthErrorCategory.CONFIG,
            error_message=redact(provider.error, provider),
        )
    if not provider.keys and not keyless(provider.provider_type, provider.preset):
        return ProbeOutcome(
            HealthStatus.DOWN,
            kind,
            error_category=HealthErrorCategory.NO_KEY,
            error_message="the instance has no enabled key",
        )
    kind, request = probe_request(provider)
    t0 = time.perf_counter()
    try:
        response = await http.send(provider, request, deadline=settings.HEALTH_CHECK_TIMEOUT)
    except httpx.TimeoutException as exc:
        return ProbeOutcome(
            HealthStatus.DOWN,
            kind,
            latency_ms=_ms(t0),
            error_category=HealthErrorCategory.TIMEOUT,
            error_message=redact(f"timed out: {type(exc).__name__}", provider),
        )
    except httpx.TransportError as exc:
        return ProbeOutcome(
            HealthStatus.DOWN,
            kind,
            latency_ms=_ms(t0),
            error_category=HealthErrorCategory.CONNECT,
            error_message=redact(f"{type(exc).__name__}: {exc}", provider),
        )
    latency = _ms(t0)
    try:
        payload = response.content
    finally:
        await response.aclose()
    status, category = _classify_status(response.status_code, latency)
    message = ""
    if response.status_code >= 300:
        message, _, _ = get_adapter(provider.provider_type).error_details(
            response.status_code, payload
        )
    else:
        try:
            orjson.loads(payload)
        except orjson.JSONDecodeError:
            status, category = HealthStatus.DOWN, HealthErrorCategory.BAD_RESPONSE
            message = "the answer is not JSON"
    if category == HealthErrorCategory.SLOW:
        message = f"answered in {latency:.0f} ms (over {settings.HEALTH_CHECK_DEGRADED_MS} ms)"
    return ProbeOutcome(
        status,
        kind,
        latency_ms=latency,
        http_status=response.status_code,
        error_category=category,
        error_message=redact(message, provider),
    )


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


def circuit_policy() -> tuple[int, int]:
    """(failure_threshold, recovery_timeout) from the gateway's routing settings.

    Looked up through the app registry: the policy row belongs to the ``gateway`` app and
    ``providers`` must not import it (imports point down: ``gateway`` builds on ``providers``).
    """
    try:
        model = apps.get_model("gateway", "RoutingSettings")
    except LookupError:
        return 5, 60
    row = model.objects.filter(pk=1).only("failure_threshold", "recovery_timeout").first()
    if row is None:
        return 5, 60
    return int(row.failure_threshold), int(row.recovery_timeout)


def _snapshot(provider: Provider) -> ProviderSnapshot:
    keys = list(ProviderKeyCredential.objects.filter(provider=provider))
    return provider_snapshot_build(provider, keys)


async def _probe_and_close(snapshot: ProviderSnapshot) -> ProbeOutcome:
    try:
        return await probe_instance(snapshot)
    finally:
        await http.close_client()


def health_check_run(*, provider_id: int) -> ProbeResult | None:
    """Probe one instance now, record the result and feed the circuit breaker.

    Returns None (nothing recorded) when the instance is missing or disabled.
    """
    provider = Provider.objects.filter(pk=provider_id).first()
    if provider is None or not provider.is_enabled:
        logger.info("health check of instance %s skipped: missing or disabled", provider_id)
        return None
    snapshot = _snapshot(provider)
    # Its own event loop: Celery workers and management commands are synchronous.
    outcome = asyncio.run(_probe_and_close(snapshot))
    check = HealthCheck.objects.create(
        provider=provider,
        status=outcome.status,
        probe=outcome.probe,
        latency_ms=outcome.latency_ms,
        http_status=outcome.http_status,
        error_category=outcome.error_category,
        error_message=outcome.error_message,
        checked_at=timezone.now(),
    )
    health_outcome_count(provider_id=provider.id, status=outcome.status)
    threshold, recovery = circuit_policy()
    circuit = circuit_record_probe_sync(
        provider.id, ok=outcome.ok, failure_threshold=threshold, recovery_timeout=recovery
    )
    if not outcome.ok:
        logger.warning(
            "instance %s (%s) is down: %s %s",
            provider.name,
            provider.id,
            outcome.error_category,
            outcome.error_message,
        )
    return ProbeResult(
        provider_id=provider.id,
        name=provider.name,
        provider_type=provider.provider_type,
        outcome=outcome,
        circuit=circuit,
        check_id=check.id,
    )


# --- selectors ---------------------------------------------------------------------------


def health_checks_latest(provider_ids: list[int] | None = None) -> dict[int, HealthCheck]:
    """The last check of each instance (that has one), keyed by instance ID: two queries."""
    latest = HealthCheck.objects.filter(provider=OuterRef("pk")).order_by("-checked_at", "-id")
    providers = Provider.objects.all()
    if provider_ids is not None:
        providers = providers.filter(pk__in=provider_ids)
    ids = [
        cid
        for cid in providers.annotate(last=Subquery(latest.values("pk")[:1])).values_list(
            "last", flat=True
        )
        if cid is not None
    ]
    return {c.provider_id: c for c in HealthCheck.objects.filter(pk__in=ids)}


def health_checks_last_outcomes(provider_ids: list[int]) -> dict[int, tuple[Any, Any]]:
    """(last good probe, last failed probe) times per instance, from the recorded history.

    ``/health`` shows these when the circuit has no such time: without Redis the serving
    process's breaker never sees the probes a Celery worker ran.
    """
    rows = (
        HealthCheck.objects.filter(provider_id__in=provider_ids)
        .values("provider_id")
        .annotate(
            ok=Max("checked_at", filter=~Q(status=HealthStatus.DOWN)),
            bad=Max("checked_at", filter=Q(status=HealthStatus.DOWN)),
        )
    )
    return {r["provider_id"]: (r["ok"], r["bad"]) for r in rows}


def health_checks_due(*, now: datetime | None = None) -> list[int]:
    """IDs of enabled instances whose own interval has elapsed since their last check."""
    current = timezone.now() if now is None else now
    latest = HealthCheck.objects.filter(provider=OuterRef("pk")).order_by("-checked_at")
    rows = Provider.objects.filter(is_enabled=True).annotate(
        last=Subquery(latest.values("checked_at")[:1])
    )
    due: list[int] = []
    for pid, interval, last in rows.values_list("pk", "health_check_interval", "last"):
        if last is None or current - last >= timedelta(seconds=interval):
            due.append(pid)
    return due


def health_checks_purge(*, days: int | None = None) -> int:
    """Delete checks older than ``days`` (default ``HEALTH_CHECK_RETENTION_DAYS``)."""
    keep = settings.HEALTH_CHECK_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=keep)
    deleted, _ = HealthCheck.objects.filter(checked_at__lt=cutoff).delete()
    return deleted
