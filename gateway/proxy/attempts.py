"""The attempt loop: try candidates and keys with retries, backoff, ``Retry-After``, a
deadline, the circuit breaker and the instances' limits, until one answers.

One :class:`AttemptLoop` per request. Per candidate it takes the instance (circuit, limits:
skipped if refused), then sends; each way an attempt can fail has one method that decides
what comes next: :meth:`~AttemptLoop.on_auth` (next key), :meth:`~AttemptLoop.on_rate_limit`
(cool the account group, next key, else wait), :meth:`~AttemptLoop.on_retryable` (backoff,
then the next instance) and :meth:`~AttemptLoop.on_transport` (the same for a connection
that failed or timed out). A failed attempt's instance is released here; the serving one is
handed to the flow on ``ctx.lease``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from django.conf import settings

from gateway.core.errors import (
    DeadlineExceeded,
    GatewayError,
    NoProviderAvailable,
    Unsupported,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from gateway.proxy import tracing
from gateway.proxy.context import RequestContext
from gateway.proxy.endpoints.base import Call, EndpointSpec, LocalAnswer
from gateway.routing import state
from gateway.routing.selection import KeyCursor
from gateway.routing.state import Lease
from gateway.routing.table import Candidate
from gateway.usage.events import Attempt
from providers import http, redaction
from providers.adapters import UnsupportedOperation, get_adapter
from providers.adapters.base import Adapter
from providers.snapshot import KeySnapshot

# Statuses that say "this request is wrong", the same on every instance: never retried.
NON_RETRYABLE = frozenset({400, 404, 405, 413, 415, 422})
# Statuses worth another try (same instance after backoff, then the next instance).
RETRYABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})

#: Reads a 2xx answer (a whole body, or a stream up to its first content); may raise
#: :class:`AttemptFailed` so that an unreadable answer fails over like a 5xx.
Accept = Callable[[EndpointSpec, Call, Adapter, Candidate, httpx.Response], Awaitable[Any]]


class AttemptFailed(Exception):
    """An attempt failed in a way that allows trying elsewhere.

    ``kind`` is ``"auth"``, ``"rate_limit"`` or ``"retryable"``; ``error`` is what the client
    is told if no other attempt succeeds."""

    def __init__(
        self, status: int | None, kind: str, error: GatewayError, retry_after: float | None = None
    ) -> None:
        super().__init__(error.message)
        self.status = status
        self.kind = kind
        self.error = error
        self.retry_after = retry_after


@dataclass(slots=True)
class Served:
    """The attempt that answered: its instance, key, open response and what ``accept`` read."""

    candidate: Candidate
    key: KeySnapshot | None
    response: httpx.Response
    result: Any


@dataclass(slots=True)
class InstanceTry:
    """One candidate instance while it is being tried."""

    candidate: Candidate
    adapter: Adapter
    cursor: KeyCursor
    key: KeySnapshot | None
    lease: Lease
    retries: int = 0
    # True: it served; False: it failed (counts toward its circuit); None: neither.
    outcome: bool | None = None


def backoff(attempt: int) -> float:
    """Exponential backoff with full jitter (uniform in [0, base * 2^attempt], capped)."""
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


#: Longest upstream error message relayed to a client (cut after redaction).
MAX_ERROR_MESSAGE = 2000


def redact(text: str, candidate: Candidate) -> str:
    """``text`` from an upstream without the instance's secrets (keys, credential headers,
    pieces of them), then cut: upstreams echo what they were sent, and their messages are
    relayed to the client."""
    return redaction.redact_for(candidate.provider, text, limit=MAX_ERROR_MESSAGE)


def upstream_error(
    adapter: Adapter, candidate: Candidate, status: int, payload: bytes
) -> UpstreamError:
    """The client-facing error for an upstream's error answer (message, type and code are the
    upstream's words: all three redacted)."""
    message, etype, code = adapter.error_details(status, payload)
    return UpstreamError(
        status,
        redact(message, candidate),
        type=redact(etype, candidate)[:100],
        code=None if code is None else redact(code, candidate)[:100],
        provider_id=candidate.provider.id,
    )


def classify(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status == 429:
        return "rate_limit"
    if status in RETRYABLE or status >= 500:
        return "retryable"
    return "fatal"


def deadline_error() -> DeadlineExceeded:
    return DeadlineExceeded(
        f"The request deadline of {settings.GATEWAY_REQUEST_DEADLINE:g} s passed before a "
        "provider instance answered."
    )


class AttemptLoop:
    """Tries one request's candidates in order until one answers 2xx (see the module doc)."""

    __slots__ = ("accept", "call", "ctx", "last", "prelease", "skipped", "spec", "waits")

    def __init__(self, ctx: RequestContext, spec: EndpointSpec, call: Call, accept: Accept):
        self.ctx = ctx
        self.spec = spec
        self.call = call
        self.accept = accept
        self.last: GatewayError | None = None
        self.waits: list[float] = []  # Retry-After/cooling of the 429s seen
        self.skipped: list[str] = []  # instances refused at acquire, with why
        # The lone candidate's instance, taken with the route view in the same round trip.
        self.prelease: Lease | None = ctx.plan.view.lease if ctx.plan else None

    async def run(self, candidates: list[Candidate]) -> Served:
        """The serving attempt (its lease on ``ctx.lease``), or raise what the client is told:
        a non-retryable upstream error at once, else the last failure once all are spent."""
        try:
            for candidate in candidates:
                served = await self.try_instance(candidate)
                if served is not None:
                    return served
                if isinstance(self.last, DeadlineExceeded):
                    break
            raise self.final_error()
        finally:
            unused, self.prelease = self.prelease, None
            if unused is not None:
                await unused.release(ok=None)

    async def take(self, candidate: Candidate) -> Lease | None:
        """Hold the instance for an attempt (circuit and limits allowing), or None."""
        provider = candidate.provider
        lease = self.prelease
        if lease is not None and lease.provider_id == provider.id:
            self.prelease = None
            return lease
        plan = self.ctx.plan
        code, lease = await state.instance_acquire(
            provider.id,
            rpm=provider.requests_per_minute,
            tpm=provider.tokens_per_minute,
            est_tokens=plan.prompt_tokens if plan else 0,
            force=plan is not None and candidate is plan.forced,
        )
        if lease is None:
            why = state.ACQUIRE_REASONS.get(code, "refused")
            self.skipped.append(f"'{provider.name}': {why}")
        return lease

    async def try_instance(self, candidate: Candidate) -> Served | None:
        ctx = self.ctx
        provider = candidate.provider
        info = ctx.plan.view.instances.get(provider.id) if ctx.plan else None
        cursor = KeyCursor(provider.keys, cooling=set(info.cooling) if info else set())
        key = cursor.first()
        if key is None and provider.keys:
            return None
        if ctx.remaining() <= 0:
            self.last = deadline_error()
            return None
        lease = await self.take(candidate)
        if lease is None:
            return None
        inst = InstanceTry(candidate, get_adapter(provider.provider_type), cursor, key, lease)
        ctx.last_candidate, ctx.last_key = candidate, key
        try:
            while True:
                try:
                    return await self.exchange(inst)
                except AttemptFailed as failure:
                    if failure.error.retry_after is None:
                        # Relayed if this failure is what the client gets (a 5xx or 529).
                        failure.error.retry_after = failure.retry_after
                    self.last = failure.error
                    if failure.kind == "auth" and inst.key is not None:
                        again = self.on_auth(inst)
                    elif failure.kind == "rate_limit":
                        again = await self.on_rate_limit(inst, failure)
                    else:
                        again = await self.on_retryable(inst, failure)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    again = await self.on_transport(inst, exc)
                if not again:
                    return None
        finally:
            if ctx.lease is not inst.lease:
                policy = ctx.policy
                await inst.lease.release(
                    ok=inst.outcome,
                    failure_threshold=policy.failure_threshold,
                    recovery_timeout=float(policy.recovery_timeout),
                )

    async def exchange(self, inst: InstanceTry) -> Served:
        """One upstream call with ``inst``'s current key; records the attempt."""
        ctx, call = self.ctx, self.call
        candidate, adapter, key = inst.candidate, inst.adapter, inst.key
        t = time.perf_counter()
        response: httpx.Response | None = None
        try:
            request = self.spec.build(call, adapter, candidate, key)
            if isinstance(request, LocalAnswer):
                response = httpx.Response(200, content=await request.compute())
            else:
                response = await http.send(
                    candidate.provider,
                    request,
                    client_headers=ctx.client_headers,
                    stream=call.stream,
                    deadline=max(0.001, ctx.remaining()),
                    trace_headers=ctx.span and tracing.attempt_start(ctx, candidate, key),
                )
            status = response.status_code
            if status < 300:
                ctx.ttfb_ms = (time.perf_counter() - t) * 1000
                result = await self.accept(self.spec, call, adapter, candidate, response)
                ctx.upstream_s += time.perf_counter() - t
                ctx.record(_record(candidate, key, status, "", t))
                ctx.last_key = key
                inst.outcome = True
                ctx.lease = inst.lease
                return Served(candidate, key, response, result)
            payload = await response.aread() if call.stream else response.content
            await response.aclose()
            error = upstream_error(adapter, candidate, status, payload)
            kind = classify(status)
            if kind == "fatal":
                ctx.upstream_s += time.perf_counter() - t
                ctx.record(_record(candidate, key, status, error.type or "", t))
                raise error  # the request is wrong, the instance is fine (outcome None)
            raise AttemptFailed(
                status, kind, error, retry_after_seconds(response.headers.get("retry-after"))
            )
        except UnsupportedOperation as exc:
            raise Unsupported(str(exc), code="unsupported_operation") from exc
        except AttemptFailed as failure:
            if response is not None and not response.is_closed:
                await response.aclose()
            ctx.upstream_s += time.perf_counter() - t
            ctx.record(_record(candidate, key, failure.status, failure.kind, t))
            raise
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            if response is not None:
                await response.aclose()
            ctx.upstream_s += time.perf_counter() - t
            what = "timeout" if isinstance(exc, httpx.TimeoutException) else "connect_error"
            ctx.record(_record(candidate, key, None, what, t))
            raise

    # --- one method per way an attempt fails: True to try again on this instance ----------

    def on_auth(self, inst: InstanceTry) -> bool:
        """401/403: that key is refused; the instance is fine. Next key, if any."""
        inst.outcome = None
        assert inst.key is not None
        inst.key = inst.cursor.after_auth_failure(inst.key)
        if inst.key is None:
            return False
        self.ctx.last_key = inst.key
        return True

    async def on_rate_limit(self, inst: InstanceTry, failure: AttemptFailed) -> bool:
        """429: the key's account group is busy, not broken (no circuit failure). Cool the
        group, try a key of another group; else wait (Retry-After or backoff) and retry."""
        inst.outcome = None
        provider = inst.candidate.provider
        wait = failure.retry_after
        cool = wait if wait is not None else settings.GATEWAY_COOLING_SECONDS
        self.waits.append(cool)
        if inst.key is not None:
            await state.group_cool(provider.id, inst.key.account_group, cool)
            other = inst.cursor.after_rate_limit(inst.key)
            if other is not None:
                inst.key = self.ctx.last_key = other
                return True
        if inst.retries >= provider.max_retries or (
            wait is not None and wait > settings.GATEWAY_RETRY_AFTER_CAP
        ):
            return False
        if not await self.sleep_within(wait if wait is not None else backoff(inst.retries)):
            return False
        inst.retries += 1
        inst.cursor = KeyCursor(provider.keys)
        inst.key = inst.cursor.first()
        return True

    async def on_retryable(self, inst: InstanceTry, failure: AttemptFailed) -> bool:
        """5xx, 408, an unreadable answer: the instance failed. Backoff (at least its
        Retry-After) and retry while retries are left, else the next instance."""
        inst.outcome = False
        wait = failure.retry_after
        if inst.retries >= inst.candidate.provider.max_retries or (
            wait is not None and wait > settings.GATEWAY_RETRY_AFTER_CAP
        ):
            return False
        if not await self.sleep_within(max(backoff(inst.retries), wait or 0.0)):
            return False
        inst.outcome = None
        inst.retries += 1
        return True

    async def on_transport(self, inst: InstanceTry, exc: Exception) -> bool:
        """No HTTP answer (refused, reset, timed out): like a 5xx, within the deadline."""
        provider = inst.candidate.provider
        if isinstance(exc, httpx.TimeoutException):
            self.last = UpstreamTimeout(
                f"Provider instance '{provider.name}' timed out.", provider_id=provider.id
            )
        else:
            self.last = UpstreamUnreachable(
                f"Provider instance '{provider.name}' could not be reached.",
                provider_id=provider.id,
            )
        inst.outcome = False
        if self.ctx.remaining() <= 0:
            self.last = deadline_error()
            return False
        if inst.retries < provider.max_retries and await self.sleep_within(backoff(inst.retries)):
            inst.outcome = None
            inst.retries += 1
            return True
        return False

    async def sleep_within(self, seconds: float) -> bool:
        """Sleep unless that would pass the deadline; False when there is no time left."""
        if seconds >= self.ctx.remaining():
            return False
        if seconds > 0:
            await asyncio.sleep(seconds)
        return True

    def final_error(self) -> GatewayError:
        """What the client is told when no attempt served."""
        plan = self.ctx.plan
        last = self.last
        if last is None:
            reasons = self.skipped + [
                f"'{c.provider.name}': {why}" for c, why in (plan.skipped if plan else [])
            ]
            detail = ("; ".join(dict.fromkeys(reasons))) if reasons else "no candidate"
            return NoProviderAvailable(
                f"No provider instance is available for this model ({detail}).",
                retry_after=self.circuit_wait(),
            )
        forced = plan.forced if plan else None
        if forced is not None and self.ctx.attempts:
            last.message = (
                "Every provider instance for this model has an open circuit; the one due to "
                f"recover first ('{forced.provider.name}') was tried and failed: {last.message}"
            )
            last.code = last.code or "all_circuits_open"
        if isinstance(last, UpstreamError) and last.status == 429 and self.waits:
            last.retry_after = min(self.waits)
        return last

    def circuit_wait(self) -> float | None:
        """Seconds until the first open circuit among the candidates may be tried again (the
        earliest a retry could succeed), when the route view knows one."""
        plan = self.ctx.plan
        if plan is None:
            return None
        now = time.time()
        waits = [
            info.retry_at - now
            for info in plan.view.instances.values()
            if info.retry_at is not None and info.retry_at > now
        ]
        return min(waits) if waits else None


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
