"""The load balancer's probes and the Prometheus scrape, answered in the ASGI front.

``GET /health/live``, ``/health/ready``, and ``/health`` and ``/metrics`` when the caller's
``Authorization`` admits it (no ``GATEWAY_METRICS_TOKEN`` set, or that bearer token), are
answered here with the functions of :mod:`gateway.monitoring.health`, the same bodies and
statuses as its Django views. Anything else on those paths (another method, a staff session
instead of the token) goes on to Django as before.

Why not Django: probes and scrapes come to every worker, and through Django each pays its
middleware and the hop to its sync thread, where a slow admin page or report ahead of a
liveness probe can get a healthy worker restarted; the first one a worker serves also loads
Django's URL configuration (the admin API, the reports, DRF's views: about +5 MB per worker,
measured). And a probe is addressed to the pod's IP, which ``ALLOWED_HOSTS`` rarely lists:
Django answers it 400. Blocking work (the database, synchronous Redis, the metrics files)
runs on the process's database thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from gateway.monitoring import health
from gateway.monitoring.scrape import CONTENT_TYPE_LATEST, metrics_render
from providers.db_thread import run_db

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_LIVE = orjson.dumps({"status": "ok"})
#: The paths :func:`probe_answer` may answer (one set lookup for every other request).
PROBE_PATHS = frozenset({"/health/live", "/health/ready", "/health", "/metrics"})


def _authorization(scope: MutableMapping[str, Any]) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return ""


async def _send(
    send: Send, status: int, body: bytes, content_type: bytes, extra: dict[str, str] | None = None
) -> None:
    # A length, not chunked encoding: a load balancer's probe may read to the body's end.
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    for name, value in (extra or {}).items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def probe_answer(scope: MutableMapping[str, Any], send: Send) -> bool:
    """Answer ``scope`` if it is a probe or scrape this front serves; False leaves it to
    Django (any other request, or one only a staff session could admit)."""
    if scope["method"] != "GET":
        return False
    path = scope["path"]
    json = b"application/json"
    if path == "/health/live":
        await _send(send, 200, _LIVE, json)
    elif path == "/health/ready":
        status, body = await run_db(health.ready_report)
        await _send(send, status, orjson.dumps(body), json)
    elif path in ("/metrics", "/health"):
        if not health.token_admits(_authorization(scope)):
            return False
        if path == "/metrics":
            await _send(send, 200, await run_db(metrics_render), CONTENT_TYPE_LATEST.encode())
        else:
            status, body, extra = await run_db(health.health_answer)
            await _send(send, status, orjson.dumps(body), json, extra)
    else:
        return False
    return True
