"""Per-request state of a ``/v1`` call, and the work a request leaves for after its answer."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from gateway.proxy import tracing
from gateway.routing.table import Candidate, RoutingPolicy, VirtualKeySnapshot
from gateway.usage.events import Attempt
from providers.snapshot import KeySnapshot

if TYPE_CHECKING:
    from gateway.routing.plan import RoutePlan
    from gateway.routing.state import Lease


_DEFAULT_POLICY = RoutingPolicy()


@dataclass(slots=True)
class RequestContext:
    """What one request knows about itself, from authentication to its usage event.

    Written by the flow (plan, outcome) and the attempt loop (attempts, serving lease);
    read by the renderer for the response headers.
    """

    vkey: VirtualKeySnapshot
    endpoint: str
    client_headers: dict[str, str]
    # 128 random bits as hex, as uuid4().hex without building a UUID object per request.
    request_id: str = field(default_factory=lambda: "gw-" + os.urandom(16).hex())
    t0: float = field(default_factory=time.perf_counter)
    wall0: float = field(default_factory=time.time)
    alias: str = ""
    stream: bool = False
    upstream_s: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)
    deadline: float = 0.0  # perf_counter time by which every attempt must be over
    plan: RoutePlan | None = None
    policy: RoutingPolicy = field(default_factory=lambda: _DEFAULT_POLICY)
    lease: Lease | None = None  # the serving attempt's hold on its instance
    last_candidate: Candidate | None = None
    last_key: KeySnapshot | None = None
    ttfb_ms: float | None = None
    # Tracing (gateway.proxy.tracing): None unless it is on. The request's SERVER span, the
    # attempt in flight's CLIENT span, the serving attempt's (ended when the request is), and
    # the (status, error type) the request settled with.
    span: Any = None
    attempt_span: Any = None
    serving_span: Any = None
    span_status: tuple[int, str] | None = None

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = self.t0 + settings.GATEWAY_REQUEST_DEADLINE

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.t0 - self.upstream_s) * 1000)

    def record(self, attempt: Attempt) -> None:
        """Add an attempt that is over (to the usage event, and to the trace when on)."""
        self.attempts.append(attempt)
        if self.attempt_span is not None:
            tracing.attempt_recorded(self, attempt)

    def attempt_trail(self) -> str:
        return ", ".join(a.header() for a in self.attempts)


@dataclass(slots=True)
class ProxyResult:
    """What the ASGI front sends: a whole body or a stream of SSE bytes."""

    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None


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


async def background_settled(timeout: float) -> None:
    """Wait, at most ``timeout`` seconds, for the work :func:`run_later` started (instance
    releases after streams, stream tails): at shutdown, so that no in-flight count is left
    held until its expiry."""
    loop = asyncio.get_running_loop()
    # Only this loop's: a task left on a loop that is gone (tests run many) can never finish.
    pending = {task for task in _background if task.get_loop() is loop and not task.done()}
    if pending:
        await asyncio.wait(pending, timeout=timeout)
