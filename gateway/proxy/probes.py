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
#: status, body, content type, extra headers; None: not this front's to answer.
Answer = tuple[int, bytes, bytes, dict[str, str]] | None

_JSON = b"application/json"
_LIVE = orjson.dumps({"status": "ok"})


def _authorization(scope: MutableMapping[str, Any]) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return ""


async def _live(scope: MutableMapping[str, Any]) -> Answer:
    return 200, _LIVE, _JSON, {}


async def _ready(scope: MutableMapping[str, Any]) -> Answer:
    status, body = await run_db(health.ready_report)
    return status, orjson.dumps(body), _JSON, {}


async def _health(scope: MutableMapping[str, Any]) -> Answer:
    if not health.token_admits(_authorization(scope)):
        return None  # a staff session may still be admitted by Django
    status, body, extra = await run_db(health.health_answer)
    return status, orjson.dumps(body), _JSON, extra


async def _metrics(scope: MutableMapping[str, Any]) -> Answer:
    if not health.token_admits(_authorization(scope)):
        return None
    return 200, await run_db(metrics_render), CONTENT_TYPE_LATEST.encode(), {}


_PROBES: dict[str, Callable[[MutableMapping[str, Any]], Awaitable[Answer]]] = {
    "/health/live": _live,
    "/health/ready": _ready,
    "/health": _health,
    "/metrics": _metrics,
}
#: The paths :func:`probe_answer` may answer (one set lookup for every other request).
PROBE_PATHS = frozenset(_PROBES)


async def probe_answer(scope: MutableMapping[str, Any], send: Send) -> bool:
    """Answer ``scope`` if it is a probe or scrape this front serves; False leaves it to
    Django (any other request, or one only a staff session could admit)."""
    probe = _PROBES.get(scope["path"]) if scope["method"] == "GET" else None
    answer = await probe(scope) if probe is not None else None
    if answer is None:
        return False
    status, body, content_type, extra = answer
    # A length, not chunked encoding: a load balancer's probe may read to the body's end.
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    for name, value in extra.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return True
