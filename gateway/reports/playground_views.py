"""Staff playground pages: the form, the streamed run (POST, CSRF-checked) and the recorded
result of a run (tokens, cost, attempts as the usage record has them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.admin.views.decorators import staff_member_required
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from gateway.core.errors import GatewayError, InvalidRequest
from gateway.proxy import render as proxy_render
from gateway.reports import request_log
from gateway.reports.playground import playground_start, redact_for
from gateway.reports.selectors import COST_PLACES
from gateway.usage.models import UsageRecord
from mappings.models import ModelProviderMapping


def _routes() -> list[dict[str, Any]]:
    rows = (
        ModelProviderMapping.objects.filter(is_enabled=True, provider__is_enabled=True)
        .order_by("model_alias", "priority", "provider__name")
        .values("model_alias", "provider_id", "provider__name")
    )
    aliases: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        aliases.setdefault(r["model_alias"], []).append(
            {"id": r["provider_id"], "name": r["provider__name"]}
        )
    return [{"alias": a, "instances": inst} for a, inst in aliases.items()]


@staff_member_required
@require_GET
def playground_page(request: HttpRequest) -> HttpResponse:
    return render(request, "ops/playground.html", {"routes": _routes()})


def _int_or_none(value: str | None, name: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) == 0:
        raise InvalidRequest(f"{name} must be a positive whole number.", param=name)
    return int(value)


@staff_member_required
@require_POST
async def playground_run(request: HttpRequest) -> HttpResponseBase:
    """Run one prompt; the answer streams back as the gateway's own SSE (OpenAI chunks)."""
    user = await request.auser()
    alias = request.POST.get("alias", "").strip()
    run = None
    try:
        run = await playground_start(
            username=user.get_username(),
            alias=alias,
            prompt=request.POST.get("prompt", ""),
            instance_id=_int_or_none(request.POST.get("instance"), "instance"),
            max_tokens=_int_or_none(request.POST.get("max_tokens"), "max_tokens"),
        )
        if run.error is not None:
            raise run.error
    except GatewayError as error:
        message = redact_for(run.table, alias, error.message) if run else error.message
        ctx = run.ctx if run else None
        return JsonResponse(
            {
                "error": message,
                "type": error.type,
                "code": error.code,
                "status": proxy_render.status_of(error),
                "request_id": ctx.request_id if ctx else None,
                "attempts": [str(s) for s in _trail(ctx)],
            },
            status=proxy_render.status_of(error),
        )
    assert run.result is not None and run.result.stream is not None
    stream = run.result.stream

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    response = StreamingHttpResponse(relay(), content_type="text/event-stream")
    for name, value in run.result.headers.items():
        if name.startswith("x-"):
            response[name] = value
    # Headers are Latin-1: the readable trail with ASCII arrows.
    trail = " => ".join(str(s).replace("→", "->") for s in _trail(run.ctx))
    response["x-gateway-attempt-text"] = trail.encode("ascii", "replace").decode()
    response["cache-control"] = "no-cache"
    response["x-accel-buffering"] = "no"
    return response


def _trail(ctx: Any) -> list[request_log.TrailStep]:
    if ctx is None:
        return []
    return request_log.attempt_trail(
        [
            {
                "provider_name": a.provider_name,
                "key_name": a.key_name,
                "status": a.status,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in ctx.attempts
        ]
    )


def _recorded(request_id: str) -> dict[str, Any] | None:
    r = (
        UsageRecord.objects.filter(request_id=request_id)
        .values("id", "status_code", "prompt_tokens", "completion_tokens", "cost", "attempts")
        .first()
    )
    if r is None:
        return None
    return {
        "status": r["status_code"],
        "prompt_tokens": r["prompt_tokens"],
        "completion_tokens": r["completion_tokens"],
        "cost": None if r["cost"] is None else str(r["cost"].quantize(COST_PLACES)),
        "attempts": [str(s) for s in request_log.attempt_trail(r["attempts"])],
        "detail_url": reverse("ops-request-detail", args=[r["id"]]),
    }


@staff_member_required
@require_GET
async def playground_result(request: HttpRequest, request_id: str) -> HttpResponse:
    """The usage record of a run once recorded (404 while the queue has not written it)."""
    found = await sync_to_async(_recorded)(request_id)
    if found is None:
        return JsonResponse({"recorded": False}, status=404)
    return JsonResponse({"recorded": True, **found})
