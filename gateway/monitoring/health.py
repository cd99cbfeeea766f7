"""``/health``, ``/health/live``, ``/health/ready`` and ``/metrics``: plain Django views.

A server process answers ``/health/live``, ``/health/ready``, and ``/health`` and
``/metrics`` for a token-admitted (or open) caller, in its ASGI front instead
(``gateway.proxy.probes``) with the functions here; these views serve the rest (a staff
session's ``/health`` and ``/metrics``, other methods).

None needs a virtual key; none shows anything secret (no keys, headers or URLs). They are not
on the hot path, so they may read the database. ``/health`` (instance names, circuit state)
and ``/metrics`` (also per-instance cost and every alias) answer only a caller presenting
``GATEWAY_METRICS_TOKEN`` as a bearer token (or a staff session) when that setting is set;
``/health/live`` and ``/health/ready`` stay open and name no instance.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from gateway.monitoring.persistence import redis_aof_warning
from gateway.monitoring.scrape import CONTENT_TYPE_LATEST, metrics_render
from providers.circuit import CircuitState, circuit_info_all_sync
from providers.health import health_checks_last_outcomes, health_checks_latest
from providers.models import HealthStatus, Provider
from providers.redis_conn import redis_ready
from providers.redis_conn import topology as redis_topology

logger = logging.getLogger(__name__)

#: Seconds a client should wait after a 503 of ``/health`` (database unreachable).
RETRY_AFTER = "5"


def token_admits(authorization: str) -> bool:
    """Whether an ``Authorization`` header value alone admits its caller to ``/metrics`` and
    ``/health``: no ``GATEWAY_METRICS_TOKEN`` is set, or it is the bearer token presented."""
    token = settings.GATEWAY_METRICS_TOKEN
    if not token:
        return True
    return authorization[:7].lower() == "bearer " and hmac.compare_digest(
        authorization[7:].strip().encode(), token.encode()
    )


def _authorised(request: HttpRequest) -> bool:
    if token_admits(request.headers.get("authorization", "")):
        return True
    try:  # the ops pages link here: a staff session may read it too
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_active and user.is_staff)
    except Exception:  # the session store (database) is down: the token is the way in
        return False


def protected(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """401 unless the caller may see instance names and costs (see the module docstring)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _authorised(request):
            response = JsonResponse(
                {"error": "send Authorization: Bearer <GATEWAY_METRICS_TOKEN>"}, status=401
            )
            response["WWW-Authenticate"] = 'Bearer realm="gateway-monitoring"'
            return response
        return view(request, *args, **kwargs)

    return wrapper


def _iso(epoch: float | None) -> str | None:
    moment = _dt(epoch)
    return moment.isoformat() if moment is not None else None


def _latest(epoch: float | None, recorded: datetime | None) -> str | None:
    """The later of the breaker's time and the probe history's (either may be missing)."""
    times = [t for t in (_dt(epoch), recorded) if t is not None]
    return max(times).isoformat() if times else None


def _dt(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch is not None else None


def health_report() -> dict[str, Any]:
    """Overall status and each instance's by ID.

    An enabled instance is *up* when its circuit is not open and its last probe (if any) did
    not find it down, and *healthy* when moreover that probe found it healthy (or there was
    none yet). Overall: ``healthy`` when every enabled instance is healthy, ``unhealthy`` when
    none is up (or none is enabled), else ``degraded``.
    """
    providers = list(Provider.objects.order_by("name"))
    ids = [p.id for p in providers]
    circuits = circuit_info_all_sync(ids)
    checks = health_checks_latest(ids)
    outcomes = health_checks_last_outcomes(ids)
    out: dict[str, dict[str, Any]] = {}
    enabled = healthy = up = 0
    for p in providers:
        circuit = circuits[p.id]
        check = checks.get(p.id)
        probe_ok, probe_failed = outcomes.get(p.id, (None, None))
        status = check.status if check is not None else "unknown"
        is_up = circuit.state != CircuitState.OPEN and status != HealthStatus.DOWN
        if p.is_enabled:
            enabled += 1
            up += is_up
            healthy += is_up and status in (HealthStatus.HEALTHY, "unknown")
        out[str(p.id)] = {
            "id": p.id,
            "name": p.name,
            "type": p.provider_type,
            "enabled": p.is_enabled,
            "status": status,
            "circuit_state": str(circuit.state),
            "failure_count": circuit.failure_count,
            "last_success": _latest(circuit.last_success, probe_ok),
            "last_failure": _latest(circuit.last_failure, probe_failed),
            "latency_ms": check.latency_ms if check is not None else None,
            "last_checked": check.checked_at.isoformat() if check is not None else None,
            "error_category": check.error_category if check is not None else "",
        }
    if enabled and healthy == enabled:
        overall = "healthy"
    elif up:
        overall = "degraded"
    else:
        overall = "unhealthy"
    return {"status": overall, "checked_at": _iso(datetime.now(UTC).timestamp()), "providers": out}


def health_answer() -> tuple[int, dict[str, Any], dict[str, str]]:
    """``/health``'s status, body and extra headers: 200 whatever the instances' status
    (readiness is /health/ready); 503 with ``Retry-After`` when the database cannot be read.
    Blocking I/O: call it off the event loop."""
    try:
        return 200, health_report(), {}
    except Exception as exc:
        logger.warning("/health: cannot read instance state: %s", type(exc).__name__)
        body = {"status": "unavailable", "error": f"cannot read state: {type(exc).__name__}"}
        return 503, body, {"Retry-After": RETRY_AFTER}


@require_GET
@protected
def health(request: HttpRequest) -> JsonResponse:
    """Overall and per-instance health (see :func:`health_answer`)."""
    status, body, headers = health_answer()
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """The process is up and serving (no I/O)."""
    return JsonResponse({"status": "ok"})


def readiness() -> tuple[bool, dict[str, str]]:
    """(ready, per dependency "ok" or the error's class name: never a URL or credential)."""
    checks: dict[str, str] = {}
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if redis_topology() is not None:
        # Sentinel: a master is named and answers; Cluster: every slot served, masters answer.
        checks["redis"] = redis_ready()[1]
    return all(v == "ok" for v in checks.values()), checks


def ready_report() -> tuple[int, dict[str, Any]]:
    """``/health/ready``'s status and body: 200 when the database and (when configured) Redis
    are usable, else 503 naming what is not. Blocking I/O: call it off the event loop."""
    ok, checks = readiness()
    body: dict[str, Any] = {"status": "ready" if ok else "unavailable", "checks": checks}
    warning = redis_aof_warning() if ok else None
    if warning:
        body["warnings"] = [warning]  # worth knowing, not a reason to take traffic away
    return (200 if ok else 503), body


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Database and (when configured) Redis usable: 200, else 503 naming what is not."""
    status, body = ready_report()
    return JsonResponse(body, status=status)


@require_GET
@protected
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition."""
    return HttpResponse(metrics_render(), content_type=CONTENT_TYPE_LATEST)
