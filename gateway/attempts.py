"""The attempt loop: try candidates and keys with retries, backoff, Retry-After, a deadline,
the circuit breaker and the instances' limits, until one answers (DESIGN "request path" 6).

Split from :mod:`gateway.pipeline`, which resolves, relays and emits usage around it.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from django.conf import settings

from gateway.api.errors import GatewayError
from gateway.routing import state as runtime
from gateway.routing.plan import RoutePlan
from gateway.routing.selection import KeyCursor
from gateway.routing.state import Lease
from gateway.routing.table import Candidate, RoutingPolicy, VirtualKeySnapshot
from gateway.usage.events import Attempt
from providers import http
from providers.adapters import UnsupportedOperation, Usage, get_adapter
from providers.adapters.base import Adapter, UpstreamRequest
from providers.snapshot import KeySnapshot

# Statuses that say "this request is wrong", the same on every instance: never retried.
NON_RETRYABLE = frozenset({400, 404, 405, 413, 415, 422})
# Statuses worth another try (same instance after backoff, then the next instance).
RETRYABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


@dataclass(slots=True)
class RequestContext:
    """Per-request state shared by the API layer and the pipeline."""

    vkey: VirtualKeySnapshot
    endpoint: str
    client_headers: dict[str, str]
    # 128 random bits as hex, as uuid4().hex without building a UUID object per request.
    request_id: str = field(default_factory=lambda: "gw-" + os.urandom(16).hex())
    t0: float = field(default_factory=time.perf_counter)
    wall0: float = field(default_factory=time.time)
    upstream_s: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    deadline: float = 0.0  # perf_counter time by which every attempt must be over
    plan: RoutePlan | None = None
    policy: RoutingPolicy | None = None
    lease: Lease | None = None  # the serving attempt's hold on its instance
    prelease: Lease | None = None  # taken with the route view, for the first attempt
    last_candidate: Candidate | None = None
    last_key: KeySnapshot | None = None
    ttfb_ms: float | None = None

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = self.t0 + settings.GATEWAY_REQUEST_DEADLINE

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.t0 - self.upstream_s) * 1000)


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter (AWS's "full jitter": uniform in [0, base*2^n])."""
    cap = settings.GATEWAY_BACKOFF_CAP
    return random.uniform(0, min(cap, settings.GATEWAY_BACKOFF_BASE * (2**attempt)))  # noqa: S311


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """An upstream ``Retry-After`` (delta seconds or an HTTP date) in seconds, or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _Failure(Exception):
    """An attempt failed in a way that allows trying elsewhere."""

    def __init__(
        self,
        status: int | None,
        message: str,
        kind: str,
        error: GatewayError,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind  # "auth" | "rate_limit" | "retryable"
        self.error = error
        self.retry_after = retry_after


def _upstream_error(
    adapter: Adapter, candidate: Candidate, status: int, payload: bytes
) -> GatewayError:
    message, etype, code = adapter.error_details(status, payload)
    return GatewayError(
        status,
        _redact(message, candidate),
        type=etype,
        code=code,
        provider_id=candidate.provider.id,
    )


def _redact(text: str, candidate: Candidate) -> str:
    """``text`` from an upstream without the instance's API keys: some upstreams echo the key
    they were given in auth errors, and upstream messages are relayed to the client."""
    for key in candidate.provider.keys:
        if key.api_key and key.api_key in text:
            text = text.replace(key.api_key, "[redacted]")
    return text


def _classify(status: int, payload: bytes) -> str:
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status in RETRYABLE or status >= 500:
        return "retryable"
    return "fatal"


Builder = Callable[[Adapter, Candidate, KeySnapshot | None], UpstreamRequest]
OnOk = Callable[[Adapter, Candidate, httpx.Response], Any]


def _deadline_error(ctx: RequestContext) -> GatewayError:
    return GatewayError(
        504,
        f"The request deadline of {settings.GATEWAY_REQUEST_DEADLINE:g} s passed before a "
        "provider instance answered.",
        type="upstream_error",
        code="deadline_exceeded",
    )


async def _sleep_within(ctx: RequestContext, seconds: float) -> bool:
    """Sleep unless that would pass the deadline; False when there is no time left."""
    if seconds >= ctx.remaining():
        return False
    if seconds > 0:
        await asyncio.sleep(seconds)
    return True


async def _attempt(
    ctx: RequestContext,
    candidates: list[Candidate],
    build: Builder,
    *,
    stream: bool,
    open_stream: OnOk | None = None,
) -> tuple[Candidate, KeySnapshot | None, httpx.Response, Any]:
    """:func:`_attempts`, then release the instance taken with the route view if no attempt
    used it (e.g. the deadline passed first)."""
    ctx.prelease = ctx.plan.view.lease if ctx.plan else None
    try:
        return await _attempts(ctx, candidates, build, stream=stream, open_stream=open_stream)
    finally:
        unused, ctx.prelease = ctx.prelease, None
        if unused is not None:
            await unused.release(ok=None)


async def _attempts(
    ctx: RequestContext,
    candidates: list[Candidate],
    build: Builder,
    *,
    stream: bool,
    open_stream: OnOk | None = None,
) -> tuple[Candidate, KeySnapshot | None, httpx.Response, Any]:
    """Try candidates and keys until one answers 2xx; return it (response open if streaming).

    Per instance: take it (circuit, instance limits: skipped if refused), then retry with
    exponential backoff and jitter, honouring ``Retry-After`` up to a cap, within the request
    deadline; then fail over to the next candidate. ``open_stream`` is called on a 2xx and may
    raise :class:`_Failure` (an unreadable body, a stream error before content): that counts
    as a failed attempt like a 5xx. Raises the error to give the client: the non-retryable
    upstream error at once, else the last failure once every candidate is spent.
    """
    plan = ctx.plan
    policy_threshold, policy_recovery = _policy(ctx)
    est = plan.prompt_tokens if plan else 0
    forced = plan.forced if plan else None
    last: GatewayError | None = None
    rate_limit_waits: list[float] = []
    skipped: list[str] = []
    for candidate in candidates:
        provider = candidate.provider
        adapter = get_adapter(provider.provider_type)
        info = plan.view.instances.get(provider.id) if plan else None
        cursor = KeyCursor(provider.keys, cooling=set(info.cooling) if info else set())
        key = cursor.first()
        if key is None and provider.keys:
            continue
        if ctx.remaining() <= 0:
            last = _deadline_error(ctx)
            break
        lease: Lease | None = ctx.prelease
        code = runtime.ACQUIRE_OK
        if lease is not None and lease.provider_id == provider.id:
            ctx.prelease = None
        else:
            code, lease = await runtime.instance_acquire(
                provider.id,
                rpm=provider.requests_per_minute,
                tpm=provider.tokens_per_minute,
                est_tokens=est,
                force=candidate is forced,
            )
        if lease is None:
            skipped.append(f"'{provider.name}': {runtime.ACQUIRE_REASONS.get(code, 'refused')}")
            continue
        ctx.last_candidate, ctx.last_key = candidate, key
        retries = 0
        outcome: bool | None = None  # True served, False the instance failed, None neither
        try:
            while True:
                t = time.perf_counter()
                response: httpx.Response | None = None
                try:
                    request = build(adapter, candidate, key)
                    response = await http.send(
                        provider,
                        request,
                        client_headers=ctx.client_headers,
                        stream=stream,
                        deadline=max(0.001, ctx.remaining()),
                    )
                    status = response.status_code
                    if status < 300:
                        ctx.ttfb_ms = (time.perf_counter() - t) * 1000
                        extra = (
                            await open_stream(adapter, candidate, response) if open_stream else None
                        )
                        ctx.upstream_s += time.perf_counter() - t
                        ctx.attempts.append(_record(candidate, key, status, "", t))
                        ctx.last_key = key
                        outcome = True
                        ctx.lease = lease
                        return candidate, key, response, extra
                    payload = await response.aread() if stream else response.content
                    await response.aclose()
                    kind = _classify(status, payload)
                    error = _upstream_error(adapter, candidate, status, payload)
                    if kind == "fatal":
                        ctx.upstream_s += time.perf_counter() - t
                        ctx.attempts.append(_record(candidate, key, status, error.type, t))
                        outcome = None  # the request is wrong, the instance is fine
                        raise error
                    raise _Failure(
                        status,
                        error.message,
                        kind,
                        error,
                        retry_after_seconds(response.headers.get("retry-after")),
                    )
                except UnsupportedOperation as exc:
                    outcome = None
                    raise GatewayError(400, str(exc), code="unsupported_operation") from exc
                except _Failure as failure:
                    if response is not None and not response.is_closed:
                        await response.aclose()
                    ctx.upstream_s += time.perf_counter() - t
                    ctx.attempts.append(_record(candidate, key, failure.status, failure.kind, t))
                    last = failure.error
                    wait = failure.retry_after
                    if failure.kind == "auth" and key is not None:
                        outcome = None
                        key = cursor.after_auth_failure(key)
                        if key is not None:
                            ctx.last_key = key
                            continue
                        break
                    if failure.kind == "rate_limit":
                        outcome = None  # busy, not broken: no circuit failure
                        cool = wait if wait is not None else settings.GATEWAY_COOLING_SECONDS
                        rate_limit_waits.append(cool)
                        if key is not None:
                            await runtime.group_cool(provider.id, key.account_group, cool)
                            other = cursor.after_rate_limit(key)
                            if other is not None:
                                key = ctx.last_key = other
                                continue
                        if retries >= provider.max_retries or (
                            wait is not None and wait > settings.GATEWAY_RETRY_AFTER_CAP
                        ):
                            break
                        if not await _sleep_within(
                            ctx, wait if wait is not None else _backoff(retries)
                        ):
                            break
                        retries += 1
                        cursor = KeyCursor(provider.keys)
                        key = cursor.first()
                        continue
                    outcome = False
                    if retries >= provider.max_retries or (
                        wait is not None and wait > settings.GATEWAY_RETRY_AFTER_CAP
                    ):
                        break
                    pause = max(_backoff(retries), wait or 0.0)
                    if not await _sleep_within(ctx, pause):
                        break
                    outcome = None
                    retries += 1
                    continue
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    if response is not None:
                        await response.aclose()
                    ctx.upstream_s += time.perf_counter() - t
                    timeout = isinstance(exc, httpx.TimeoutException)
                    err_text = "timeout" if timeout else "connect_error"
                    ctx.attempts.append(_record(candidate, key, None, err_text, t))
                    last = GatewayError(
                        504 if timeout else 502,
                        f"Provider instance '{provider.name}' "
                        + ("timed out." if timeout else "could not be reached."),
                        type="upstream_error",
                        code=err_text,
                        provider_id=provider.id,
                    )
                    outcome = False
                    if ctx.remaining() <= 0:
                        last = _deadline_error(ctx)
                        break
                    if retries < provider.max_retries and await _sleep_within(
                        ctx, _backoff(retries)
                    ):
                        outcome = None
                        retries += 1
                        continue
                    break
        finally:
            if ctx.lease is not lease:
                await lease.release(
                    ok=outcome,
                    failure_threshold=policy_threshold,
                    recovery_timeout=policy_recovery,
                )
        if last is not None and last.code == "deadline_exceeded":
            break
    raise _final_error(ctx, last, rate_limit_waits, skipped, forced)


def _policy(ctx: RequestContext) -> tuple[int, float]:
    policy = ctx.policy or RoutingPolicy()
    return policy.failure_threshold, float(policy.recovery_timeout)


async def finish(ctx: RequestContext, usage: Usage | None) -> None:
    """The serving attempt is over: release its instance (success, latency, real tokens) and
    correct the key's token window with the real usage."""
    lease, ctx.lease = ctx.lease, None
    actual = usage.prompt_tokens + usage.completion_tokens if usage is not None else None
    threshold, recovery = _policy(ctx)
    if lease is not None:
        await lease.release(
            ok=True,
            latency_ms=ctx.ttfb_ms,
            failure_threshold=threshold,
            recovery_timeout=recovery,
            actual_tokens=actual,
        )
    if actual is not None and ctx.vkey.tokens_per_minute is not None and ctx.plan is not None:
        await runtime.key_tokens_correct(ctx.vkey.id, actual - ctx.plan.prompt_tokens)


_background: set[asyncio.Task[None]] = set()


def run_later(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` on the loop without awaiting it, holding a reference until it ends (the
    loop keeps only weak ones). Outside a running loop ``work`` is dropped, unstarted."""
    try:
        task = asyncio.get_running_loop().create_task(work)
    except RuntimeError:
        work.close()
        return
    _background.add(task)
    task.add_done_callback(_background.discard)


def finish_later(ctx: RequestContext, usage: Usage | None) -> None:
    """:func:`finish` from a place that must not await (a closing stream generator)."""
    run_later(finish(ctx, usage))


async def background_settled(timeout: float) -> None:
    """Wait, at most ``timeout`` seconds, for the work :func:`run_later` started (instance
    releases after streams, stream tails): at shutdown, so that no in-flight count is left
    held until its expiry."""
    loop = asyncio.get_running_loop()
    # Only this loop's: a task left on a loop that is gone (tests run many) can never finish.
    pending = {task for task in _background if task.get_loop() is loop and not task.done()}
    if pending:
        await asyncio.wait(pending, timeout=timeout)


def _final_error(
    ctx: RequestContext,
    last: GatewayError | None,
    rate_limit_waits: list[float],
    skipped: list[str],
    forced: Candidate | None,
) -> GatewayError:
    plan = ctx.plan
    if last is None:
        reasons = skipped + [
            f"'{c.provider.name}': {why}" for c, why in (plan.skipped if plan else [])
        ]
        detail = ("; ".join(dict.fromkeys(reasons))) if reasons else "no candidate"
        return GatewayError(
            503,
            f"No provider instance is available for this model ({detail}).",
            code="no_available_provider",
        )
    if forced is not None and ctx.attempts:
        last.message = (
            "Every provider instance for this model has an open circuit; the one due to "
            f"recover first ('{forced.provider.name}') was tried and failed: {last.message}"
        )
        last.code = last.code or "all_circuits_open"
    if last.status == 429 and rate_limit_waits:
        last.headers = {**last.headers, "retry-after": str(max(1, round(min(rate_limit_waits))))}
    return last


def _record(
    candidate: Candidate, key: KeySnapshot | None, status: int | None, error: str, t: float
) -> Attempt:
    return Attempt(
        provider_id=candidate.provider.id,
        provider_name=candidate.provider.name,
        key_id=key.id if key else None,
        key_name=key.name if key else "",
        status=status,
        error=error,
        duration_ms=(time.perf_counter() - t) * 1000,
    )
