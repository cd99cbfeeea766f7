"""Start and stop this module's background work with the ASGI server (GatewayApp.lifespan)."""

from __future__ import annotations

import logging

from gateway.routing.state import releases_flush
from gateway.usage.budget_state import budget_state
from gateway.usage.events import get_usage_queue

logger = logging.getLogger(__name__)


async def usage_startup() -> None:
    """Start the usage flusher (adopting dead processes' spools) and load the budget state."""
    queue = get_usage_queue()
    start = getattr(queue, "start", None)
    if start is not None:
        await start()
    try:
        await budget_state.refresh()
    except Exception:
        logger.exception("could not load the budget state at startup; retrying in background")


async def usage_shutdown() -> None:
    """Drain the usage buffer and the queued routing releases before the process exits
    (spooling the usage that cannot be sent; releases Redis refuses go to local state)."""
    queue = get_usage_queue()
    aclose = getattr(queue, "aclose", None)
    if aclose is not None:
        await aclose()
    await releases_flush()
